"""The SKILL-MIX metrics (docs/protocol.md §5): vote over grading rounds, score each generation, take the
best generation per combination, average over combinations with error bars.

    >>> import numpy as np
    >>> pts = np.ones((2, 1, 3, 5))          # 2 combinations, 1 generation, 3 rounds, k = 2
    >>> pts[1, 0, :, 0] = 0                  # combination 1 misses its first skill in every round
    >>> m = skillmix_metrics(pts, k=2)
    >>> m["ratio_full_marks"], m["ratio_all_skills"], m["skills_fraction"]
    (0.5, 0.5, 0.75)

Decisions where the protocol is silent (documented, and tested):
- **Vote**: per criterion, the mean of the valid rounds' points; the point is awarded (1.0) when
  that mean is **strictly above 0.5**, else 0.0. With 0/1 points this is the majority; a tie
  (one of two valid rounds, or 1, 0 and two failed rounds) does not award the point.
- **Half points** count as half a vote: 0.5, 0.5, 0.5 gives mean 0.5 → 0; 1, 0.5, 0.5 gives
  0.67 → 1; a lone valid 0.5 → 0. Voted points are therefore always 0 or 1.
- **Failed rounds** (NaN) are left out of the vote and counted (`n_parse_failures`); a criterion
  with no valid round is NaN, and a generation with any NaN criterion is left out of the max
  over generations (`n_excluded_generations`); a combination with no usable generation is left
  out of the mean (`n_excluded_combinations`).
- **Error bars**: `_sem` is the sample standard deviation over combinations (ddof=1) over
  sqrt(n), NaN below 2 combinations. `_ci_low`/`_ci_high` is a 95% interval: where every
  combination scores 0 or 1 (always so for the two ratios), the Wilson score interval (a
  percentile bootstrap of 0 full marks in 12 is [0, 0], as if 12 texts proved the rate is 0;
  Wilson gives [0, 0.24]); otherwise (a fractional skills fraction) a seeded percentile
  bootstrap over combinations.
"""
from __future__ import annotations

import math

import numpy as np

METRICS = ("ratio_full_marks", "ratio_all_skills", "skills_fraction")


def majority_vote(rounds) -> tuple[np.ndarray, int]:
    """Vote over grading rounds, criterion by criterion.

    `rounds`: shape (R, k + 3), NaN where a round failed (or one point was unreadable).
    Returns (points of shape (k + 3,), 1.0 / 0.0 / NaN where no round is valid, and the number
    of valid rounds, i.e. rounds with at least one readable point).

    >>> import numpy as np
    >>> nan = float("nan")
    >>> p, n = majority_vote([[1, 1, 0.5, 1], [1, 0, 0.5, nan], [0, 1, 1, nan]])
    >>> p.tolist(), n
    ([1.0, 1.0, 1.0, 1.0], 3)
    >>> p, n = majority_vote([[1, 0, 1, 1], [0, 0, 1, 1], [nan, nan, nan, nan]])
    >>> p.tolist(), n                                  # 1 of 2 valid rounds: a tie, no point
    ([0.0, 0.0, 1.0, 1.0], 2)
    >>> majority_vote(np.full((3, 4), nan))[0].tolist()
    [nan, nan, nan, nan]
    """
    a = np.asarray(rounds, dtype=float)
    if a.ndim != 2:
        raise ValueError(f"rounds must be shaped (rounds, k + 3), got {a.shape}")
    return vote(a, axis=0), int((~np.isnan(a)).any(axis=1).sum())


def vote(a: np.ndarray, axis: int) -> np.ndarray:
    valid = ~np.isnan(a)
    n = valid.sum(axis=axis)
    total = np.where(valid, a, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
    return np.where(n > 0, (mean > 0.5).astype(float), np.nan)


def generation_scores(voted, k: int) -> dict[str, np.ndarray]:
    """The three metrics of each graded text from its voted points (..., k + 3) in {0, 1}.

    Ratio of Full Marks: all k + 3 points. Ratio of All Skills: all k skill points and at least
    2 of the other 3. Skills Fraction: (s1 + ... + sk) / k if all 3 other points, else 0.
    NaN where any point is NaN.

    >>> s = generation_scores([[1, 1, 1, 1, 0], [1, 0, 1, 1, 1], [1, 1, 1, 1, 1]], k=2)
    >>> [s[m].tolist() for m in METRICS]
    [[0.0, 0.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.5, 1.0]]
    """
    v = np.asarray(voted, dtype=float)
    if v.shape[-1] != k + 3:
        raise ValueError(f"last axis must hold k + 3 = {k + 3} points, got {v.shape[-1]}")
    skills, others = v[..., :k], v[..., k:]
    bad = np.isnan(v).any(axis=-1)
    full = (v == 1).all(axis=-1)
    all_skills = (skills == 1).all(axis=-1) & ((others == 1).sum(axis=-1) >= 2)
    fraction = np.where((others == 1).all(axis=-1), np.nan_to_num(skills).mean(axis=-1), 0.0)
    out = {"ratio_full_marks": full.astype(float), "ratio_all_skills": all_skills.astype(float),
           "skills_fraction": fraction.astype(float)}
    return {name: np.where(bad, np.nan, x) for name, x in out.items()}


def wilson_interval(successes: float, n: int, ci: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion: never empty at 0 or n successes.

    >>> [round(x, 4) for x in wilson_interval(0, 12)]
    [0.0, 0.2425]
    >>> [round(x, 4) for x in wilson_interval(6, 12)]
    [0.2538, 0.7462]
    """
    if n <= 0:
        return float("nan"), float("nan")
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1.0 - (1.0 - ci) / 2.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _sem(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) >= 2 else float("nan")


def skillmix_metrics(points, k: int, n_boot: int = 1000, seed: int = 0,
                     ci: float = 0.95) -> dict[str, float | int]:
    """The SKILL-MIX metrics of a set of graded texts.

    `points`: shape (combinations, generations, grading rounds, k + 3), NaN for a failed
    grading. Per text: majority vote over rounds, then the three metrics; per combination: the
    maximum over usable generations; then the mean over usable combinations, with `_sem`,
    `_ci_low` and `_ci_high` (Wilson where every combination scores 0 or 1, else a percentile
    bootstrap over combinations, `n_boot` draws, `seed`).
    Counts: `n_combinations` (used), `n_generations` (used), `n_excluded_generations`,
    `n_excluded_combinations`, `n_parse_failures` (rounds with no readable point),
    `n_gradings` (all rounds).

    >>> import numpy as np
    >>> pts = np.ones((1, 2, 3, 4))                 # k = 1, two generations
    >>> pts[0, 0, :, 3] = 0                         # generation 0 breaks the length limit
    >>> pts[0, 1, :, :] = np.nan                    # generation 1: every grading failed
    >>> m = skillmix_metrics(pts, k=1)
    >>> m["ratio_full_marks"], m["ratio_all_skills"], m["n_excluded_generations"], m["n_parse_failures"]
    (0.0, 1.0, 1, 3)
    """
    p = np.asarray(points, dtype=float)
    if p.ndim != 4 or p.shape[-1] != k + 3:
        raise ValueError(f"points must be shaped (combinations, generations, rounds, k + 3 = {k + 3}),"
                         f" got {p.shape}")
    n_comb, n_gen, n_rounds, _ = p.shape
    failed_rounds = np.isnan(p).all(axis=-1)
    voted = vote(p, axis=2)                                      # (C, G, k + 3)
    scores = generation_scores(voted, k)                          # each (C, G)
    usable = ~np.isnan(voted).any(axis=-1)                        # (C, G)
    comb_ok = usable.any(axis=1)

    out: dict[str, float | int] = {}
    rng = np.random.default_rng(seed)
    n_ok = int(comb_ok.sum())
    boot_idx = rng.integers(0, n_ok, size=(n_boot, n_ok)) if n_ok and n_boot > 0 else None
    alpha = (1.0 - ci) / 2.0
    for name in METRICS:
        if n_ok:
            per_comb = np.where(usable, scores[name], -np.inf)[comb_ok].max(axis=1)
            out[name] = float(per_comb.mean())
            out[f"{name}_sem"] = _sem(per_comb)
            if np.isin(per_comb, (0.0, 1.0)).all():     # 0/1 per combination: a proportion
                lo, hi = wilson_interval(float(per_comb.sum()), n_ok, ci)
                out[f"{name}_ci_low"], out[f"{name}_ci_high"] = lo, hi
            elif boot_idx is not None:
                means = per_comb[boot_idx].mean(axis=1)
                out[f"{name}_ci_low"] = float(np.quantile(means, alpha))
                out[f"{name}_ci_high"] = float(np.quantile(means, 1.0 - alpha))
            else:
                out[f"{name}_ci_low"] = out[f"{name}_ci_high"] = float("nan")
        else:
            out[name] = out[f"{name}_sem"] = float("nan")
            out[f"{name}_ci_low"] = out[f"{name}_ci_high"] = float("nan")
    out.update(n_combinations=n_ok, n_generations=int(usable.sum()),
               n_excluded_generations=int((~usable).sum()),
               n_excluded_combinations=int(n_comb - n_ok),
               n_parse_failures=int(failed_rounds.sum()), n_gradings=int(n_comb * n_gen * n_rounds))
    return out


def cohen_kappa(a, b) -> float:
    """Cohen's kappa between two raters' labels (pairs with a NaN or None are dropped).

    Degenerate case: when chance agreement is 1 (both raters gave one and the same label to
    every item) kappa is 0/0, **undefined**: NaN, as when there are no pairs at all. (It used to
    be 1.0, which a reader took for perfect agreement beyond chance when there was no chance
    to disagree; `constant_labels` tells the two NaNs apart.)

    >>> cohen_kappa([1, 1, 0, 0], [1, 1, 0, 0]), cohen_kappa([1, 0, 1, 0], [0, 1, 0, 1])
    (1.0, -1.0)
    >>> round(cohen_kappa([1, 1, 1, 0], [1, 1, 0, 0]), 3)
    0.5
    >>> cohen_kappa([1, 1, 1], [1, 1, 1])
    nan
    """
    x = np.asarray([np.nan if v is None else v for v in a], dtype=float)
    y = np.asarray([np.nan if v is None else v for v in b], dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"label lists differ in length: {x.shape} vs {y.shape}")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) == 0:
        return float("nan")
    observed = float((x == y).mean())
    labels = np.union1d(x, y)
    expected = float(sum((x == c).mean() * (y == c).mean() for c in labels))
    if expected >= 1.0 - 1e-12:
        return float("nan")
    return (observed - expected) / (1.0 - expected)


def constant_labels(a, b) -> bool:
    """Whether two raters gave one and the same label to every item they both rated (kappa is
    undefined then, `cohen_kappa`).

    >>> constant_labels([1, 1, None], [1, 1, 0]), constant_labels([1, 0], [1, 0])
    (True, False)
    """
    x = np.asarray([np.nan if v is None else v for v in a], dtype=float)
    y = np.asarray([np.nan if v is None else v for v in b], dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    return bool(keep.any()) and len(np.union1d(x[keep], y[keep])) == 1


def grader_agreement(points_a, points_b, k: int) -> dict[str, float | int]:
    """How two graders agree on the same texts (the paper's Table 6).

    `points_a`, `points_b`: voted points of the same texts, any shape (..., k + 3), NaN where
    unknown. Returns `kappa_skill_1` .. `kappa_skill_k`, `kappa_topic`, `kappa_sense`,
    `kappa_length`, `kappa_skills` (all skill points pooled), `kappa_full_marks`,
    `p_full_b_given_full_a`, `p_full_a_given_full_b` (conditional rates of full marks),
    `full_marks_a`, `full_marks_b` (rates), and `n_texts` (texts with all points known by both).

    >>> a = [[1, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1], [1, 0, 1, 1]]
    >>> b = [[1, 1, 1, 1], [1, 1, 0, 1], [1, 1, 1, 1], [1, 0, 1, 1]]
    >>> g = grader_agreement(a, b, k=1)
    >>> g["p_full_b_given_full_a"], g["p_full_a_given_full_b"], g["n_texts"]
    (0.5, 0.5, 4)
    """
    pa = np.asarray(points_a, dtype=float).reshape(-1, k + 3)
    pb = np.asarray(points_b, dtype=float).reshape(-1, k + 3)
    if pa.shape != pb.shape:
        raise ValueError(f"the two graders scored different numbers of texts: {pa.shape} vs {pb.shape}")
    names = [f"skill_{i + 1}" for i in range(k)] + ["topic", "sense", "length"]
    out: dict[str, float | int] = {}
    for j, name in enumerate(names):
        out[f"kappa_{name}"] = cohen_kappa(pa[:, j], pb[:, j])
    out["kappa_skills"] = cohen_kappa(pa[:, :k].ravel(), pb[:, :k].ravel())
    both = ~(np.isnan(pa).any(axis=1) | np.isnan(pb).any(axis=1))
    fa, fb = (pa[both] == 1).all(axis=1), (pb[both] == 1).all(axis=1)
    out["kappa_full_marks"] = cohen_kappa(fa.astype(float), fb.astype(float))
    out["p_full_b_given_full_a"] = float(fb[fa].mean()) if fa.any() else float("nan")
    out["p_full_a_given_full_b"] = float(fa[fb].mean()) if fb.any() else float("nan")
    out["full_marks_a"] = float(fa.mean()) if both.any() else float("nan")
    out["full_marks_b"] = float(fb.mean()) if both.any() else float("nan")
    out["n_texts"] = int(both.sum())
    return out
