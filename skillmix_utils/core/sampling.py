"""Seeded combinations of k distinct skills and one topic (docs/protocol.md §2), the same everywhere.

    >>> from skillmix_utils.core.catalog import load_catalog
    >>> combos = sample_combinations(load_catalog(), k=3, n=100, seed=0)   # held-out pools
    >>> len(combos), combos[0].k, combos[0].setting, len(set(combos[0].skills))
    (100, 3, 'held_out', 3)

Why not `random` or numpy: Python guarantees only `random()` across versions, not `sample`,
`shuffle` or `randrange`, and numpy makes no such promise for its Generator methods. Here every
number comes from SHA-256: combination `index` of a draw reads the stream
sha256("{key}/{counter}"), counter = 0, 1, 2, ..., where the key is
"skillmix-combination/v2/{purpose}/{skills}/{topics}/{seed}/{k}/{index}" for a draw made for a
purpose ("data" or "eval") from the named skill and topic pools, and the original
"skillmix-combination/v1/{seed}/{k}/{index}" when no purpose is given. Namespacing matters: with
one key for every draw, data generation and evaluation at the same seed drew the very same
combinations, so SKILL-MIX_train asked the training data's own questions. Each
digest gives one 64-bit integer (the first 8 bytes, big-endian), and a uniform integer below m
rejects values at or above the largest multiple of m (so no modulo bias). Skills are chosen by
a partial Fisher-Yates shuffle of the pool (uniform over ordered k-tuples of distinct skills),
then the topic. Each combination depends only on its key and the pools, so the first
10 of a draw of 100 are the draw of 10, and every generation round can reuse them.

Exclusion (docs/protocol.md §2): a draw may be told to avoid a set of combinations (the study's
training combinations, as unordered skill sets with a topic). A drawn combination in that set is
rejected and the same stream draws again; `Combination.excluded_draws` records how many were
rejected before the one kept, so the count is on every record.
"""
from __future__ import annotations

import hashlib
from math import comb
from typing import Collection

from skillmix_utils.core.catalog import POOLS, Catalog
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.records import Combination

ALGORITHM = "skillmix-combination/v1"
ALGORITHM_NAMESPACED = "skillmix-combination/v2"
PURPOSES = ("data", "eval")
MAX_REJECTED = 100_000      # per combination: beyond this the excluded set leaves too little


def combination_key(skills, topic: str) -> tuple[frozenset, str]:
    """What makes two combinations the same question: the set of skills and the topic.

    >>> combination_key(("b", "a"), "Knots") == combination_key(["a", "b"], "Knots")
    True
    """
    return frozenset(skills), str(topic)


class HashStream:
    """A stream of uniform integers from SHA-256 of "{key}/{counter}".

    >>> s = HashStream("skillmix-combination/v1/0/3/0")
    >>> [s.below(10) for _ in range(5)]
    [0, 7, 9, 4, 9]
    """

    def __init__(self, key: str):
        self.key, self.counter = key, 0

    def next64(self) -> int:
        digest = hashlib.sha256(f"{self.key}/{self.counter}".encode("utf-8")).digest()
        self.counter += 1
        return int.from_bytes(digest[:8], "big")

    def below(self, m: int) -> int:
        """A uniform integer in [0, m), by rejection sampling."""
        if m < 1:
            raise ValueError(f"below() needs m >= 1, got {m}")
        limit = (1 << 64) - (1 << 64) % m
        while True:
            x = self.next64()
            if x < limit:
                return x % m


def _int(value, field: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SkillmixError(f"must be an integer, got {value!r}", field=field)
    if minimum is not None and value < minimum:
        raise SkillmixError(f"must be at least {minimum}, got {value}", field=field)
    return value


def sample_combinations(catalog: "Catalog", k: int, n: int, seed: int,
                        skills: str = "held_out", topics: str = "held_out",
                        purpose: str | None = None,
                        exclude: Collection[tuple[frozenset, str]] = ()) -> list[Combination]:
    """n combinations of k distinct skills and one topic, uniform over the chosen pools.

    Pools are "train", "held_out" or "all" (docs/protocol.md §1). `.setting` is the pool name
    when the skill and topic pools agree, else "custom"; `.index` is the position in the draw.
    `purpose` ("data" or "eval") namespaces the draw (see the module docstring); `exclude` holds
    `combination_key`s that are never returned (uniform over the rest of the pools).
    Example: `sample_combinations(load_catalog(), k=2, n=50, seed=1, skills="train",
    topics="train", purpose="eval", exclude=training_keys)`.
    """
    if purpose is not None and purpose not in PURPOSES:
        raise SkillmixError(f"unknown purpose {purpose!r}: must be one of {', '.join(PURPOSES)}",
                            field="purpose")
    for field, pool in (("skills", skills), ("topics", topics)):
        if pool not in POOLS:
            raise SkillmixError(f"unknown pool {pool!r}: must be one of {', '.join(POOLS)}",
                                field=field)
    k, n, seed = _int(k, "k", 1), _int(n, "n", 0), _int(seed, "seed")
    skill_pool, topic_pool = catalog.skills_in(skills), catalog.topics_in(topics)
    if k > len(skill_pool):
        raise SkillmixError(f"k={k} is larger than the {skills} skill pool "
                            f"({len(skill_pool)} skills)", field="k")
    if not topic_pool:
        raise SkillmixError(f"the {topics} topic pool is empty", field="topics")
    setting = skills if skills == topics else "custom"
    excluded = _excluded_in_pools(exclude, skill_pool, topic_pool, k)
    if excluded and excluded >= comb(len(skill_pool), k) * len(topic_pool):
        raise SkillmixError(f"every one of the {excluded} combinations of k={k} {skills} skills "
                            f"and {topics} topics is in the excluded (training) set: nothing is "
                            "left to draw", field="k")
    head = (f"{ALGORITHM_NAMESPACED}/{purpose}/{skills}/{topics}/{seed}/{k}" if purpose
            else f"{ALGORITHM}/{seed}/{k}")
    out = []
    for index in range(n):
        stream = HashStream(f"{head}/{index}")
        rejected = 0
        while True:
            order = list(range(len(skill_pool)))
            for j in range(k):                      # partial Fisher-Yates
                r = j + stream.below(len(order) - j)
                order[j], order[r] = order[r], order[j]
            chosen = [skill_pool[i] for i in order[:k]]
            topic = topic_pool[stream.below(len(topic_pool))]
            if not excluded or combination_key((s.name for s in chosen), topic.name) not in exclude:
                break
            rejected += 1
            if rejected >= MAX_REJECTED:
                raise SkillmixError(f"{rejected} draws in a row were excluded combinations "
                                    f"(k={k}, {skills} skills, {topics} topics): the pools are "
                                    "nearly exhausted by the training data", field="k")
        out.append(Combination(skills=tuple(s.name for s in chosen), topic=topic.name, k=k,
                               setting=setting, index=index,
                               categories=tuple(s.category for s in chosen),
                               excluded_draws=rejected))
    return out


def _excluded_in_pools(exclude, skill_pool, topic_pool, k: int) -> int:
    """How many excluded combinations lie inside these pools (0 when nothing is excluded)."""
    if not exclude:
        return 0
    names, topic_names = {s.name for s in skill_pool}, {t.name for t in topic_pool}
    return sum(1 for skills, topic in exclude
               if len(skills) == k and topic in topic_names and skills <= names)
