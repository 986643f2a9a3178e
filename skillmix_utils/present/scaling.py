"""Scaling curves: success against k per training mix, and against the number of training texts.

A scaling study is one grid config (configs/scaling.yaml): `evaluation.ks` up to 8 (the
sentence limit max(1, k - 1) and its words are defined for every k: `prompts.number_words`),
and `train.subsample` over sub-samples of one mix at several sizes and of one size at different
k compositions (`data.subsamples`, `per_k`). After the grid, `write_scaling` reads the stacked
`grid/metrics.csv` (columns `run`, `train_data`, `n_train_texts`) and draws

- figures/scaling_success_vs_k.png: Ratio of Full Marks against k on the held-out setting, one
  line per training mix (the base student once, dashed), metrics.csv's 95% intervals (Wilson's
  for this ratio);
- figures/scaling_data_efficiency.png: the same against the number of training texts, one line
  per k (the paper's Section 4.3 curve), from the tuned students only;

and tables/scaling.csv/.md with the numbers behind both. A figure needs at least two points
on its x axis; otherwise it is left out.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from skillmix_utils.present.figures import save_figure
from skillmix_utils.present.paper_tables import is_tuned, main_grader, read_table, to_markdown

MAIN_SETTING = "held_out"


def _pick(metrics, setting: str, grader: str | None):

    df = metrics[metrics["setting"] == setting]
    g = main_grader(df, grader)
    return (df[df["grader"] == g] if g else df), g


def _mix_label(row) -> str:

    if not is_tuned(row.get("adapter")):
        return "base"
    return str(row.get("train_data") or row.get("student"))


def scaling_frame(metrics, setting: str = MAIN_SETTING, grader: str | None = None,
                  metric: str = "ratio_full_marks"):
    """One row per (training mix, k): the metric, its interval and the number of training texts.
    The base student, identical in every grid run, is kept once."""
    import pandas as pd

    df, g = _pick(metrics, setting, grader)
    if df.empty:
        return pd.DataFrame()
    df = df.assign(mix=[_mix_label(r) for r in df.to_dict("records")])
    df = df.drop_duplicates(["mix", "k"])
    cols = ["mix", "k", "n_train_texts", metric, f"{metric}_ci_low", f"{metric}_ci_high",
            "n_combinations"]
    out = df[[c for c in cols if c in df.columns]].copy()
    out.loc[out["mix"] == "base", "n_train_texts"] = 0 if "n_train_texts" in out else None
    out.insert(0, "grader", g)
    out.insert(1, "setting", setting)
    return out.sort_values(["mix", "k"]).reset_index(drop=True)


def errorbar(ax, x, sub, metric, **kw):
    y = sub[metric].to_numpy(float)
    lo = y - sub[f"{metric}_ci_low"].to_numpy(float)
    hi = sub[f"{metric}_ci_high"].to_numpy(float) - y
    ax.errorbar(x, y, yerr=[np.nan_to_num(lo), np.nan_to_num(hi)], capsize=3, marker="o", **kw)


def success_vs_k(frame, out_dir, metric: str = "ratio_full_marks",
                 name: str = "scaling_success_vs_k", line=None) -> list[Path]:
    """Metric against k, one line per training mix; `line` = (label, y) draws a horizontal
    reference line (e.g. the stochastic-parrot probability)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    if frame.empty or frame["k"].nunique() < 2:
        return []
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for mix, sub in frame.groupby("mix", sort=False):
        sub = sub.sort_values("k")
        errorbar(ax, sub["k"], sub, metric, label=mix, linestyle="--" if mix == "base" else "-")
    if line is not None:
        ax.axhline(line[1], color="crimson", lw=1, ls=":", label=line[0])
    ax.set_xlabel("k (skills per text)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_xticks(sorted(frame["k"].unique()))
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{frame['setting'].iloc[0]}, grader {frame['grader'].iloc[0]}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out_dir, name)


def data_efficiency(frame, out_dir, metric: str = "ratio_full_marks",
                    name: str = "scaling_data_efficiency") -> list[Path]:
    """Metric against the number of training texts, one line per k (tuned students only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    if frame.empty or "n_train_texts" not in frame:
        return []
    tuned = frame[(frame["mix"] != "base") & frame["n_train_texts"].notna()]
    if tuned["n_train_texts"].nunique() < 2:
        return []
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for k, sub in tuned.groupby("k"):
        # same size, several compositions: one point each, the line through their mean
        sub = sub.sort_values("n_train_texts")
        errorbar(ax, sub["n_train_texts"], sub, metric, label=f"k={k}", linestyle="none")
        mean = sub.groupby("n_train_texts")[metric].mean()
        ax.plot(mean.index, mean.values, lw=1, color=ax.lines[-1].get_color())
    ax.set_xlabel("training texts (skill-mix examples)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Data efficiency, {frame['setting'].iloc[0]}, grader {frame['grader'].iloc[0]}",
                 fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out_dir, name)


def write_scaling(out: Path, metrics, setting: str = MAIN_SETTING) -> dict[str, Path]:
    """tables/scaling.csv/.md and the two figures under `out`, from stacked grid metrics."""

    metrics = read_table(metrics)
    if metrics.empty or "k" not in metrics:
        return {}
    frame = scaling_frame(metrics, setting)
    figs = (success_vs_k(frame, out / "figures") + data_efficiency(frame, out / "figures"))
    if not figs:
        return {}
    (out / "tables").mkdir(parents=True, exist_ok=True)
    paths = {"scaling": out / "tables" / "scaling.csv", "scaling_md": out / "tables" / "scaling.md"}
    frame.to_csv(paths["scaling"], index=False)
    paths["scaling_md"].write_text(to_markdown(frame.round(3)) + "\n")
    paths.update({p.name: p for p in figs})
    return paths
