"""Cross-partition validation: other train/held-out splits of skills and topics, and the
held-out gain (tuned - base) per partition.

A partition is `catalog.partition` in a study config (config.PartitionSpec):

    catalog:
      partition:
        name: random-s1
        skills: {rule: random, train_fraction: 0.5, seed: 1}   # or by_category / file
        topics: {rule: random, seed: 1}                        # or file

`rule: file` keeps the catalog file's own split (the paper's, for the built-in catalog);
`by_category` makes `train_categories` the training skills; `random` takes the skills (or
topics) with the lowest SHA-256 rank of "<seed>:<name>", `round(train_fraction * n)` of them,
as training (same on every machine, independent of file order). One grid config over
`catalog.partition` (configs/partitions.yaml) runs the whole study once per partition, each
with its own data, training and evaluation; `gain_table` then pairs base and tuned students on
the same held-out combinations and `write_partition_gain` writes tables/partition_gain.csv/.md
and figures/partition_gain.png.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.metrics import generation_scores, vote
from skillmix_utils.present.figures import save_figure
from skillmix_utils.present.paper_tables import to_markdown
from skillmix_utils.stages.current import current_records
from skillmix_utils.stages.tables import grader_labels, points_array


def combination_scores(recs, label: str, cfg, k: int, metric: str = "ratio_full_marks"
                       ) -> dict[int, float]:
    """combination index -> the metric's max over generations (one grader; usable ones only)."""

    if not recs:
        return {}
    combos = sorted({r.combination.index for r in recs})
    voted = vote(points_array(recs, label, cfg, k), axis=2)
    scores = generation_scores(voted, k)[metric]
    usable = ~np.isnan(voted).any(axis=-1)
    return {c: float(np.where(usable[i], scores[i], -np.inf).max())
            for i, c in enumerate(combos) if usable[i].any()}


def base_and_tuned(cfg, base: str | None = None, tuned: str | None = None) -> tuple[str, str]:
    """The names of the base student (the first with no adapter) and the tuned one (the first
    with an adapter), unless given; SkillmixError when the config lacks either."""
    students = cfg.evaluation.students if cfg.evaluation else []
    base = base or next((s.name for s in students if not s.adapter), None)
    tuned = tuned or next((s.name for s in students if s.adapter), None)
    if not base or not tuned:
        raise SkillmixError("the gain needs a base student (no adapter) and a tuned one",
                            field="evaluation.students")
    return base, tuned


def gain_rows(cfg, setting: str = "held_out", metric: str = "ratio_full_marks",
              base: str | None = None, tuned: str | None = None, n_boot: int = 1000,
              records=None) -> list[dict]:
    """Per k and grader: base and tuned means on the same combinations of `setting`, their
    difference, and a paired bootstrap interval over combinations (current records only, as in
    the metric tables; `records`: the study's current evaluation records, when the caller has
    them already)."""

    if not (cfg.out / "eval" / "records.jsonl").exists():
        return []
    base, tuned = base_and_tuned(cfg, base, tuned)
    records = [r for r in (current_records(cfg, "eval") if records is None else records)
               if r.combination.setting == setting]
    part = cfg.catalog.partition.name if cfg.catalog.partition else None
    rows = []
    rng = np.random.default_rng(cfg.evaluation.seed)
    for k in sorted({r.combination.k for r in records}):
        recs = {s: [r for r in records if r.combination.k == k and r.student == s]
                for s in (base, tuned)}
        for label in grader_labels(cfg, recs[base] + recs[tuned]):
            b = combination_scores(recs[base], label, cfg, k, metric)
            t = combination_scores(recs[tuned], label, cfg, k, metric)
            common = sorted(set(b) & set(t))
            if not common:
                continue
            d = np.array([t[c] - b[c] for c in common])
            boots = d[rng.integers(0, len(d), (n_boot, len(d)))].mean(axis=1)
            rows.append({"partition": part or "file", "setting": setting, "k": k, "grader": label,
                         "metric": metric, "base": float(np.mean([b[c] for c in common])),
                         "tuned": float(np.mean([t[c] for c in common])), "gain": float(d.mean()),
                         "gain_ci_low": float(np.quantile(boots, 0.025)),
                         "gain_ci_high": float(np.quantile(boots, 0.975)),
                         "n_combinations": len(common),
                         "skill_split": "", "topic_split": ""})
    return rows


def write_partition_gain(out: Path, runs, metric: str = "ratio_full_marks") -> dict[str, Path]:
    """For grid `runs` [(label, cfg)] over `catalog.partition`: tables/partition_gain.csv/.md
    and figures/partition_gain.png/.pdf under `out`. Nothing when no run sets a partition."""
    import pandas as pd


    runs = [(label, cfg) for label, cfg in runs if cfg.catalog.partition is not None]
    if not runs:
        return {}
    rows = []
    for label, cfg in runs:
        catalog = cfg.catalog.load()
        for r in gain_rows(cfg, metric=metric):
            r.update(partition=cfg.catalog.partition.name or label,
                     skill_split=catalog.skill_split, topic_split=catalog.topic_split)
            rows.append(r)
    if not rows:
        return {}
    df = pd.DataFrame(rows)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    paths = {"partition_gain": out / "tables" / "partition_gain.csv"}
    df.to_csv(paths["partition_gain"], index=False)
    show = df.assign(gain=df.apply(lambda r: f"{r.gain:+.2f} [{r.gain_ci_low:+.2f}, "
                                             f"{r.gain_ci_high:+.2f}]", axis=1))
    paths["partition_gain_md"] = out / "tables" / "partition_gain.md"
    paths["partition_gain_md"].write_text(to_markdown(show[[
        "partition", "k", "grader", "base", "tuned", "gain", "n_combinations", "skill_split",
        "topic_split"]].round(3)) + "\n")
    for p in gain_figure(df, out / "figures"):
        paths[p.name] = p
    return paths


def gain_figure(df, out_dir, name: str = "partition_gain") -> list[Path]:
    """Held-out gain (tuned - base) per partition, one marker per k, 95% paired-bootstrap bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    grader = df["grader"].iloc[0]
    d = df[df["grader"] == grader]
    parts = list(dict.fromkeys(d["partition"]))
    ks = sorted(d["k"].unique())
    fig, ax = plt.subplots(figsize=(max(4, 1.3 * len(parts) + 2), 3.6))
    width = 0.8 / max(1, len(ks))
    for j, k in enumerate(ks):
        sub = d[d["k"] == k].set_index("partition").reindex(parts)
        x = np.arange(len(parts)) + (j - (len(ks) - 1) / 2) * width
        ax.errorbar(x, sub["gain"], yerr=[sub["gain"] - sub["gain_ci_low"],
                                          sub["gain_ci_high"] - sub["gain"]],
                    fmt="o", capsize=3, label=f"k={k}")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(np.arange(len(parts)), parts, rotation=20, ha="right")
    ax.set_ylabel(f"held-out gain, {d['metric'].iloc[0].replace('_', ' ')}")
    ax.set_title(f"Tuned - base on held-out skills and topics, per partition ({grader})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out_dir, name)
