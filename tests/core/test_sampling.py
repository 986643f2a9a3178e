"""Seeded combinations (docs/protocol.md §2): pinned draws, the documented algorithm, uniformity, errors."""
from __future__ import annotations

import ast
import hashlib
import inspect
from collections import Counter
from itertools import combinations

import pytest
from scipy.stats import chi2

from skillmix_utils.core import sampling
from skillmix_utils.core.catalog import Catalog, Skill, Topic, load_catalog
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.records import Combination
from skillmix_utils.core.sampling import HashStream, sample_combinations


@pytest.fixture(scope="module")
def synthetic() -> Catalog:
    """20 skills (s00..s11 train, s12..s19 held out) and 10 topics: pins the algorithm alone,
    independent of the built-in catalog's content."""
    skills = [Skill(f"s{i:02d}", f"cat{i % 3}", "d.", "e.", "train" if i < 12 else "held_out")
              for i in range(20)]
    topics = [Topic(f"t{i}", "train" if i % 2 else "held_out") for i in range(10)]
    return Catalog(skills, topics, source="synthetic")


def _chi_square(counts, expected) -> float:
    return sum((c - expected) ** 2 / expected for c in counts)


# --- pinned outputs: these fail if the algorithm changes -------------------------------------

def test_pinned_draws(synthetic):
    got = [(c.skills, c.topic) for c in sample_combinations(synthetic, k=3, n=4, seed=0)]
    assert got == [(("s18", "s16", "s17"), "t8"), (("s12", "s17", "s15"), "t8"),
                   (("s13", "s17", "s12"), "t2"), (("s12", "s18", "s13"), "t6")]
    got = [(c.skills, c.topic, c.setting) for c in
           sample_combinations(synthetic, k=2, n=3, seed=12345, skills="train", topics="all")]
    assert got == [(("s04", "s11"), "t7", "custom"), (("s03", "s05"), "t6", "custom"),
                   (("s06", "s10"), "t6", "custom")]


def test_pinned_hash_stream():
    s = HashStream("skillmix-combination/v1/0/3/0")
    assert [s.below(10) for _ in range(5)] == [0, 7, 9, 4, 9]
    assert HashStream("x").next64() == int.from_bytes(hashlib.sha256(b"x/0").digest()[:8], "big")


def test_matches_documented_algorithm(synthetic):
    """A second implementation written from the module docstring gives the same draws."""
    def below(key, counter, m):
        while True:
            x = int.from_bytes(hashlib.sha256(f"{key}/{counter}".encode()).digest()[:8], "big")
            counter += 1
            if x < 2 ** 64 - 2 ** 64 % m:
                return x % m, counter

    pool = [s for s in synthetic.skills if s.split == "held_out"]
    tpool = [t for t in synthetic.topics if t.split == "held_out"]
    for combo in sample_combinations(synthetic, k=4, n=25, seed=99):
        key, counter, order = f"skillmix-combination/v1/99/4/{combo.index}", 0, list(range(len(pool)))
        for j in range(4):
            r, counter = below(key, counter, len(order) - j)
            order[j], order[j + r] = order[j + r], order[j]
        t, _ = below(key, counter, len(tpool))
        assert combo.skills == tuple(pool[i].name for i in order[:4])
        assert combo.topic == tpool[t].name


def test_no_platform_dependent_randomness():
    tree = ast.parse(inspect.getsource(sampling))
    imported = {a.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"random", "numpy", "secrets"}


# --- properties -----------------------------------------------------------------------------

def test_same_seed_same_draw_and_prefix_stable(synthetic):
    a = sample_combinations(synthetic, k=3, n=50, seed=7)
    assert a == sample_combinations(synthetic, k=3, n=50, seed=7)
    assert a[:10] == sample_combinations(synthetic, k=3, n=10, seed=7)
    assert a != sample_combinations(synthetic, k=3, n=50, seed=8)
    assert [c.skills for c in a] != [c.skills for c in sample_combinations(synthetic, 2, 50, 7)]


def test_combination_fields(synthetic):
    for c in sample_combinations(synthetic, k=3, n=200, seed=1, skills="train", topics="train"):
        assert isinstance(c, Combination) and c.k == 3 and c.setting == "train"
        assert len(set(c.skills)) == 3
        assert all(synthetic.skill(s).split == "train" for s in c.skills)
        assert c.topic in {t.name for t in synthetic.topics_in("train")}
        assert c.categories == tuple(synthetic.skill(s).category for s in c.skills)
    idx = [c.index for c in sample_combinations(synthetic, k=1, n=5, seed=1, skills="all",
                                                topics="all")]
    assert idx == [0, 1, 2, 3, 4]


def test_k_equal_to_pool_is_a_permutation(synthetic):
    for c in sample_combinations(synthetic, k=8, n=20, seed=3):
        assert sorted(c.skills) == [f"s{i}" for i in range(12, 20)]


def test_builtin_catalog_draw():
    combos = sample_combinations(load_catalog(), k=5, n=100, seed=0)
    cat = load_catalog()
    assert all(cat.skill(s).split == "held_out" for c in combos for s in c.skills)
    assert len({c.skills for c in combos}) == 100


# --- uniformity (fixed seeds, so deterministic; thresholds at p = 0.001) ----------------------

def test_uniform_skills_positions_pairs_and_topics(synthetic):
    n, k = 6000, 3
    combos = sample_combinations(synthetic, k=k, n=n, seed=2024, skills="train", topics="all")
    m = 12
    per_skill = Counter(s for c in combos for s in c.skills)
    assert len(per_skill) == m
    assert _chi_square(per_skill.values(), n * k / m) < chi2.ppf(0.999, m - 1)
    for pos in range(k):
        first = Counter(c.skills[pos] for c in combos)
        assert _chi_square(first.values(), n / m) < chi2.ppf(0.999, m - 1)
    pairs = Counter(p for c in combos for p in combinations(sorted(c.skills), 2))
    n_pairs = m * (m - 1) // 2
    assert len(pairs) == n_pairs
    assert _chi_square(pairs.values(), n * 3 / n_pairs) < chi2.ppf(0.999, n_pairs - 1)
    topics = Counter(c.topic for c in combos)
    assert _chi_square(topics.values(), n / 10) < chi2.ppf(0.999, 9)


def test_uniform_integers_with_rejection():
    s = HashStream("uniformity")
    draws = Counter(s.below(7) for _ in range(7000))
    assert set(draws) == set(range(7))
    assert _chi_square(draws.values(), 1000) < chi2.ppf(0.999, 6)
    big = 2 ** 63 + 1                         # about half of all 64-bit values are rejected
    s = HashStream("rejection")
    values = [s.below(big) for _ in range(200)]
    assert all(0 <= v < big for v in values) and s.counter > 300
    with pytest.raises(ValueError):
        s.below(0)


# --- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, field, message", [
    ({"k": 0}, "k", "at least 1"),
    ({"k": 9}, "k", "k=9 is larger than the held_out skill pool (8 skills)"),
    ({"k": 13, "skills": "train"}, "k", "larger than the train skill pool (12 skills)"),
    ({"k": 2.0}, "k", "must be an integer"),
    ({"n": -1}, "n", "at least 0"),
    ({"seed": "0"}, "seed", "must be an integer"),
    ({"skills": "heldout"}, "skills", "unknown pool 'heldout'"),
    ({"topics": "dev"}, "topics", "unknown pool 'dev'"),
])
def test_bad_arguments(synthetic, kwargs, field, message):
    args = {"k": 2, "n": 3, "seed": 0, **kwargs}
    with pytest.raises(SkillmixError) as err:
        sample_combinations(synthetic, **args)
    assert err.value.field == field and message in err.value.reason


def test_empty_topic_pool(synthetic):
    only_train = Catalog(synthetic.skills, [Topic("t", "train")])
    with pytest.raises(SkillmixError) as err:
        sample_combinations(only_train, k=1, n=1, seed=0)
    assert err.value.field == "topics"


# --- purposes and exclusion (docs/protocol.md §2) ----------------------------------------------

def test_purposes_draw_independently(synthetic):
    data = sample_combinations(synthetic, k=2, n=20, seed=0, skills="train", topics="train",
                               purpose="data")
    ev = sample_combinations(synthetic, k=2, n=20, seed=0, skills="train", topics="train",
                             purpose="eval")
    assert [(c.skills, c.topic) for c in data] != [(c.skills, c.topic) for c in ev]
    again = sample_combinations(synthetic, k=2, n=20, seed=0, skills="train", topics="train",
                                purpose="eval")
    assert again == ev
    with pytest.raises(SkillmixError):
        sample_combinations(synthetic, k=2, n=1, seed=0, purpose="training")


def test_excluded_combinations_are_never_drawn_and_counted(synthetic):
    from skillmix_utils.core.sampling import combination_key

    skills = [s.name for s in synthetic.skills_in("train")]
    topics = [t.name for t in synthetic.topics_in("train")]
    every = {combination_key([s], t) for s in skills for t in topics}
    left = combination_key([skills[3]], topics[1])
    combos = sample_combinations(synthetic, k=1, n=5, seed=0, skills="train", topics="train",
                                 purpose="eval", exclude=every - {left})
    assert {combination_key(c.skills, c.topic) for c in combos} == {left}
    assert sum(c.excluded_draws for c in combos) > 0
    # Order does not matter: a set of skills is one combination.
    pair = sample_combinations(synthetic, k=2, n=50, seed=1, skills="train", topics="train",
                               purpose="eval")[0]
    reversed_key = combination_key(tuple(reversed(pair.skills)), pair.topic)
    again = sample_combinations(synthetic, k=2, n=50, seed=1, skills="train", topics="train",
                                purpose="eval", exclude={reversed_key})
    assert all(combination_key(c.skills, c.topic) != reversed_key for c in again)
    with pytest.raises(SkillmixError, match="nothing is left"):
        sample_combinations(synthetic, k=1, n=1, seed=0, skills="train", topics="train",
                            purpose="eval", exclude=every)
