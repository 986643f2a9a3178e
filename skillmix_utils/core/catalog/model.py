"""The catalog's shape: skills and topics with their train / held-out splits, and the pools."""
from __future__ import annotations

from dataclasses import dataclass

from skillmix_utils.core.errors import SkillmixError

SPLITS = ("train", "held_out")
POOLS = ("train", "held_out", "all")
DEFAULT_TRAIN_CATEGORIES = ("literary", "rhetorical")      # the paper's S_train (docs/protocol.md §1)
SKILLMIX_CSV_COLUMNS = ("category", "skill", "definition", "example", "comments", "status",
                        "added by")
SKILLMIX_DROPPED_STATUSES = frozenset({"remove", "in review", "maybe"})
SIMPLE_CSV_COLUMNS = ("name", "category", "definition", "example")   # + optional "split"
TOPIC_SPLIT_METHOD = "sha256_rank"


@dataclass(frozen=True)
class Skill:
    name: str
    category: str
    definition: str
    example: str
    split: str          # "train" | "held_out"


@dataclass(frozen=True)
class Topic:
    name: str
    split: str          # "train" | "held_out"


@dataclass(frozen=True)
class Catalog:
    """Skills and topics with their splits, and where they came from.

    `skill_split` and `topic_split` say in words how the splits were made; `topic_seed` is the
    seed of the topic draw (None when the topics file gave explicit splits).
    """
    skills: tuple[Skill, ...]
    topics: tuple[Topic, ...]
    source: str = ""
    skill_split: str = ""
    topic_split: str = ""
    topic_seed: int | None = None
    partition: str = ""      # name of a config partition (partitions.py) applied on top, if any

    def __post_init__(self):
        object.__setattr__(self, "skills", tuple(self.skills))
        object.__setattr__(self, "topics", tuple(self.topics))
        # Looked up by name for every skill of every planned text: 375,000 times in the paper
        # config's dry run, where scanning the catalog for each was a fifth of it (cProfile).
        by_name: dict[str, Skill] = {}
        for s in self.skills:
            by_name.setdefault(s.name.casefold(), s)
        object.__setattr__(self, "_by_name", by_name)

    def skill(self, name: str) -> Skill:
        """The skill called `name` (case and surrounding spaces ignored); SkillmixError if none."""
        found = self._by_name.get(name.strip().casefold())
        if found is not None:
            return found
        raise SkillmixError(f"no skill named {name!r} in the catalog ({self.source})",
                            field="skill")

    def skills_in(self, pool: str = "all") -> tuple[Skill, ...]:
        """The skills of a pool: "train", "held_out" or "all", in catalog order."""
        return tuple(s for s in self.skills if _in_pool(s.split, pool))

    def topics_in(self, pool: str = "all") -> tuple[Topic, ...]:
        """The topics of a pool: "train", "held_out" or "all", in catalog order."""
        return tuple(t for t in self.topics if _in_pool(t.split, pool))

    @property
    def categories(self) -> tuple[str, ...]:
        """Skill categories in order of first appearance."""
        return tuple(dict.fromkeys(s.category for s in self.skills))


def _in_pool(split: str, pool: str) -> bool:
    if pool not in POOLS:
        raise SkillmixError(f"unknown pool {pool!r}: must be one of {', '.join(POOLS)}",
                            field="pool")
    return pool == "all" or split == pool
