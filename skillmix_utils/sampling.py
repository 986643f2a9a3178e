"""Seeded combinations of k distinct skills and one topic (PROTOCOL §2), the same everywhere.

    >>> from skillmix_utils.catalog import load_catalog
    >>> combos = sample_combinations(load_catalog(), k=3, n=100, seed=0)   # held-out pools
    >>> len(combos), combos[0].k, combos[0].setting, len(set(combos[0].skills))
    (100, 3, 'held_out', 3)

Why not `random` or numpy: Python guarantees only `random()` across versions, not `sample`,
`shuffle` or `randrange`, and numpy makes no such promise for its Generator methods. Here every
number comes from SHA-256: combination `index` of a draw reads the stream
sha256("skillmix-combination/v1/{seed}/{k}/{index}/{counter}"), counter = 0, 1, 2, ...; each
digest gives one 64-bit integer (the first 8 bytes, big-endian), and a uniform integer below m
rejects values at or above the largest multiple of m (so no modulo bias). Skills are chosen by
a partial Fisher-Yates shuffle of the pool (uniform over ordered k-tuples of distinct skills),
then the topic. Each combination depends only on (seed, k, index) and the pools, so the first
10 of a draw of 100 are the draw of 10, and every generation round can reuse them.
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from .catalog import POOLS
from .errors import SkillmixError
from .records import Combination

if TYPE_CHECKING:
    from .catalog import Catalog

ALGORITHM = "skillmix-combination/v1"


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
                        skills: str = "held_out", topics: str = "held_out") -> list[Combination]:
    """n combinations of k distinct skills and one topic, uniform over the chosen pools.

    Pools are "train", "held_out" or "all" (PROTOCOL §1). `.setting` is the pool name when the
    skill and topic pools agree, else "custom"; `.index` is the position in the draw.
    Example: `sample_combinations(load_catalog(), k=2, n=50, seed=1, skills="train", topics="train")`.
    """
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
    out = []
    for index in range(n):
        stream = HashStream(f"{ALGORITHM}/{seed}/{k}/{index}")
        order = list(range(len(skill_pool)))
        for j in range(k):                      # partial Fisher-Yates
            r = j + stream.below(len(order) - j)
            order[j], order[r] = order[r], order[j]
        chosen = [skill_pool[i] for i in order[:k]]
        topic = topic_pool[stream.below(len(topic_pool))]
        out.append(Combination(skills=tuple(s.name for s in chosen), topic=topic.name, k=k,
                               setting=setting, index=index,
                               categories=tuple(s.category for s in chosen)))
    return out
