"""Metrics of docs/protocol.md §5 with hand-computed values: votes, ties, NaNs, max over generations,
exclusions, error bars, grader agreement."""
from __future__ import annotations

import math

import numpy as np
import pytest

from skillmix_utils.core.metrics import (
    cohen_kappa,
    constant_labels,
    generation_scores,
    grader_agreement,
    majority_vote,
    skillmix_metrics,
)

nan = float("nan")


# ---- majority vote ---------------------------------------------------------------------------

@pytest.mark.parametrize("column,want", [
    ([1, 1, 1], 1.0), ([1, 1, 0], 1.0), ([1, 0, 0], 0.0), ([0, 0, 0], 0.0),
    ([1, 0, nan], 0.0),          # tie of two valid rounds: not awarded
    ([1, nan, nan], 1.0),        # one valid round decides alone
    ([0, nan, nan], 0.0),
    ([nan, nan, nan], nan),      # no valid round: unknown, not 0
    ([0.5, 0.5, 0.5], 0.0),      # half points are half votes: mean 0.5 is a tie
    ([1, 0.5, 0.5], 1.0),        # mean 2/3
    ([1, 0.5, 0], 0.0),          # mean 1/2
    ([0.5, nan, nan], 0.0),      # a lone half point does not award
    ([1, 1, 0, 0], 0.0), ([1, 1, 1, 0, 0], 1.0),
])
def test_vote_per_criterion(column, want):
    rounds = np.array([[v, 1, 1, 1] for v in column], dtype=float)
    points, _ = majority_vote(rounds)
    assert (math.isnan(points[0]) and math.isnan(want)) or points[0] == want
    assert points[1:].tolist() == [1.0, 1.0, 1.0]


def test_vote_counts_valid_rounds():
    r = [[1, 1, 1, 1], [nan] * 4, [0, 1, nan, 1]]
    points, n_valid = majority_vote(r)
    assert n_valid == 2
    assert points.tolist() == [0.0, 1.0, 1.0, 1.0]    # criterion 0 is a 1-1 tie


def test_vote_shape_checked():
    with pytest.raises(ValueError):
        majority_vote([1, 1, 1])


# ---- per-generation metrics ------------------------------------------------------------------

def test_generation_scores_by_hand():
    k = 3
    texts = [
        [1, 1, 1, 1, 1, 1],   # full marks
        [1, 1, 1, 1, 1, 0],   # all skills, 2 of 3 others: all_skills yes, fraction 0
        [1, 1, 1, 0, 0, 1],   # all skills but only 1 other: all_skills no
        [1, 0, 1, 1, 1, 1],   # others all earned: fraction 2/3
        [0, 0, 0, 1, 1, 1],   # fraction 0
    ]
    s = generation_scores(texts, k)
    assert s["ratio_full_marks"].tolist() == [1, 0, 0, 0, 0]
    assert s["ratio_all_skills"].tolist() == [1, 1, 0, 0, 0]
    assert np.allclose(s["skills_fraction"], [1, 0, 0, 2 / 3, 0])


def test_generation_scores_nan():
    s = generation_scores([[1, nan, 1, 1, 1]], 2)
    assert all(math.isnan(s[m][0]) for m in s)


# ---- the full pipeline -----------------------------------------------------------------------

def _grid(c, g, r, k, fill=1.0):
    return np.full((c, g, r, k + 3), fill)


def test_max_over_generations_then_mean():
    k = 2
    p = _grid(3, 3, 3, k, 0.0)
    # combination 0: generation 2 has full marks in every round
    p[0, 2] = 1
    # combination 1: best generation has all skills + topic + sense, not length;
    # another generation has others all but one skill
    p[1, 0] = [1, 1, 1, 1, 0]
    p[1, 1] = [1, 0, 1, 1, 1]
    # combination 2: nothing earned
    m = skillmix_metrics(p, k)
    assert m["ratio_full_marks"] == pytest.approx(1 / 3)
    assert m["ratio_all_skills"] == pytest.approx(2 / 3)
    # skills fraction per combination: 1, max(0, 0.5) = 0.5, 0
    assert m["skills_fraction"] == pytest.approx(0.5)
    assert m["n_combinations"] == 3 and m["n_excluded_generations"] == 0
    # SEM by hand for full marks [1, 0, 0]: sd = sqrt(1/3), sem = sd / sqrt(3) = 1/3
    assert m["ratio_full_marks_sem"] == pytest.approx(1 / 3)
    assert m["skills_fraction_sem"] == pytest.approx(np.std([1, 0.5, 0], ddof=1) / math.sqrt(3))


def test_max_is_per_metric():
    # Each metric takes its own max over generations (generation 0 best on fraction,
    # generation 1 best on all-skills).
    k = 2
    p = _grid(1, 2, 1, k)
    p[0, 0, 0] = [1, 0, 1, 1, 1]   # fraction 0.5, all_skills 0
    p[0, 1, 0] = [1, 1, 1, 0, 1]   # fraction 0 (sense missing), all_skills 1
    m = skillmix_metrics(p, k)
    assert (m["ratio_full_marks"], m["ratio_all_skills"], m["skills_fraction"]) == (0.0, 1.0, 0.5)


def test_votes_inside_pipeline():
    k = 1
    p = _grid(1, 1, 3, k)
    p[0, 0, 0, 0] = 0             # 2 of 3 rounds give the skill: awarded
    p[0, 0, 1:, 1] = 0            # 2 of 3 rounds deny the topic: not awarded
    m = skillmix_metrics(p, k)
    assert m["ratio_full_marks"] == 0.0 and m["ratio_all_skills"] == 1.0
    assert m["skills_fraction"] == 0.0


def test_tie_after_failed_round_does_not_award():
    k = 1
    p = _grid(1, 1, 3, k)
    p[0, 0, 0] = nan              # a parse failure
    p[0, 0, 1, 0] = 0             # the two valid rounds disagree on the skill
    m = skillmix_metrics(p, k)
    assert m["ratio_full_marks"] == 0.0 and m["n_parse_failures"] == 1
    assert m["n_excluded_generations"] == 0


def test_exclusions_and_counts():
    k = 2
    p = _grid(4, 2, 3, k)
    p[0, 0] = nan                 # combination 0, generation 0: all rounds failed -> excluded
    p[0, 1, :, 0] = 0             # ... generation 1 is usable but misses skill 1
    p[1, :, :, 2] = nan           # combination 1: topic unreadable in every round of both gens
    p[2, 1, 0] = nan              # one failed round; two valid ones remain and agree
    p[3] = 0
    m = skillmix_metrics(p, k)
    assert m["n_excluded_generations"] == 3          # (0, 0), (1, 0), (1, 1)
    assert m["n_excluded_combinations"] == 1         # combination 1
    assert m["n_combinations"] == 3
    assert m["n_parse_failures"] == 3 + 1            # 3 rounds of (0, 0) + 1 of (2, 1)
    assert m["n_gradings"] == 4 * 2 * 3
    # used combinations: 0 (max over gen 1 only: misses skill -> 0), 2 (full), 3 (nothing)
    assert m["ratio_full_marks"] == pytest.approx(1 / 3)
    # combination 0 fraction: others all earned, 1 of 2 skills -> 0.5
    assert m["skills_fraction"] == pytest.approx((0.5 + 1 + 0) / 3)


def test_no_usable_combination():
    p = np.full((2, 1, 3, 4), nan)
    m = skillmix_metrics(p, 1)
    assert math.isnan(m["ratio_full_marks"]) and m["n_combinations"] == 0
    assert m["n_excluded_combinations"] == 2 and m["n_parse_failures"] == 6


def test_single_combination_sem_is_nan():
    m = skillmix_metrics(_grid(1, 1, 1, 1), 1)
    assert m["ratio_full_marks"] == 1.0 and math.isnan(m["ratio_full_marks_sem"])
    # One text in full marks is no proof of a rate of 1: the interval says how little it shows.
    assert m["ratio_full_marks_ci_low"] == pytest.approx(0.2065, abs=1e-4)
    assert m["ratio_full_marks_ci_high"] == 1.0


def test_no_full_marks_in_twelve_still_has_an_interval():
    """0 of 12: the SEM is 0 and a bootstrap would give [0, 0]; the Wilson interval does not
    pretend that twelve texts pin the rate at 0."""
    p = np.ones((12, 1, 1, 6))
    p[:, 0, 0, 0] = 0                                   # every text misses its first skill
    m = skillmix_metrics(p, 3)
    assert m["ratio_full_marks"] == 0.0 and m["ratio_full_marks_sem"] == 0.0
    assert m["ratio_full_marks_ci_low"] == 0.0
    assert m["ratio_full_marks_ci_high"] == pytest.approx(0.2425, abs=1e-4)
    assert m["skills_fraction"] == pytest.approx(2 / 3)   # fractional: the bootstrap's interval
    assert m["skills_fraction_ci_low"] == m["skills_fraction_ci_high"] == pytest.approx(2 / 3)


def test_bootstrap_seeded_and_brackets_mean():
    rng = np.random.default_rng(1)
    p = (rng.random((40, 3, 3, 5)) < 0.6).astype(float)
    a = skillmix_metrics(p, 2, n_boot=500, seed=7)
    b = skillmix_metrics(p, 2, n_boot=500, seed=7)
    c = skillmix_metrics(p, 2, n_boot=500, seed=8)
    assert a == b and a != c
    for name in ("ratio_full_marks", "ratio_all_skills", "skills_fraction"):
        assert a[f"{name}_ci_low"] <= a[name] <= a[f"{name}_ci_high"]
        assert a[f"{name}_sem"] > 0


def test_shape_checked():
    with pytest.raises(ValueError):
        skillmix_metrics(np.ones((2, 1, 3, 5)), k=3)
    with pytest.raises(ValueError):
        skillmix_metrics(np.ones((2, 3, 5)), k=2)


# ---- agreement -------------------------------------------------------------------------------

def test_cohen_kappa_by_hand():
    # a = [1,1,1,1,0,0], b = [1,1,1,0,0,1]: po = 4/6; pa1 = 4/6, pb1 = 4/6
    # pe = (4/6)^2 + (2/6)^2 = 20/36; kappa = (24/36 - 20/36) / (16/36) = 0.25
    assert cohen_kappa([1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 1]) == pytest.approx(0.25)


def test_cohen_kappa_degenerate_and_nan():
    # Both raters give one constant label: no chance to disagree, kappa is 0/0, undefined (it
    # was reported as 1.0, perfect agreement).
    assert math.isnan(cohen_kappa([1, 1, 1], [1, 1, 1]))
    assert math.isnan(cohen_kappa([0, 0], [0, 0]))
    assert constant_labels([0, 0], [0, 0]) and not constant_labels([1, 1], [1, 0])
    assert cohen_kappa([1, 0], [0, 1]) == -1.0
    assert math.isnan(cohen_kappa([], []))
    assert cohen_kappa([1, nan, 0], [1, 0, 0]) == 1.0      # the NaN pair is dropped
    with pytest.raises(ValueError):
        cohen_kappa([1], [1, 0])


def test_grader_agreement_table6():
    k = 1
    a = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1], [1, 1, 1, 0]], float)
    b = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]], float)
    g = grader_agreement(a, b, k)
    assert g["n_texts"] == 5
    assert g["p_full_b_given_full_a"] == pytest.approx(2 / 3)   # A full: texts 0,1,2; B full on 0,1
    assert g["p_full_a_given_full_b"] == pytest.approx(2 / 4)   # B full: 0,1,3,4; A full on 0,1
    assert g["full_marks_a"] == pytest.approx(3 / 5) and g["full_marks_b"] == pytest.approx(4 / 5)
    # skill column: a = [1,1,1,0,1], b = [1,1,0,1,1]: po = 3/5, pe = .8*.8 + .2*.2 = .68
    assert g["kappa_skill_1"] == pytest.approx((0.6 - 0.68) / (1 - 0.68))
    # Both graders gave every topic and sense point: kappa undefined there, not 1.0.
    assert math.isnan(g["kappa_topic"]) and math.isnan(g["kappa_sense"])
    for key in ("kappa_skills", "kappa_length", "kappa_full_marks"):
        assert key in g


def test_grader_agreement_drops_unknown_texts():
    a = np.array([[1, 1, 1, 1], [nan, 1, 1, 1]])
    b = np.array([[1, 1, 1, 1], [1, 1, 1, 1]])
    g = grader_agreement(a, b, 1)
    assert g["n_texts"] == 1 and g["p_full_b_given_full_a"] == 1.0


@pytest.mark.parametrize("shape", [(0, 3, 3, 5), (2, 0, 3, 5), (2, 3, 0, 5)])
def test_empty_axes(shape):
    m = skillmix_metrics(np.ones(shape), 2)
    assert m["n_combinations"] == 0 and math.isnan(m["ratio_full_marks"])
    assert m["n_excluded_combinations"] == shape[0]
