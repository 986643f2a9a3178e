"""The paper's figures from a study's metric tables, as PNG and PDF (matplotlib Agg, seaborn style).

    from skillmix_utils.present.figures import write_figures
    write_figures("outputs/demo/eval/tables", "outputs/demo/figures")

| function | what |
|---|---|
| `figure2_full_marks` | Figure 2: Ratio of Full Marks by k, base vs fine-tuned, one panel per setting, error bars = SEM (the 95% Wilson interval where the SEM is 0: a point is never drawn as certain); the paper's quoted numbers for the same setting and k as reference marks, whatever the student |
| `category_heatmap` | per skill category (rows) x student and k (columns), each cell with its n skill points |
| `loss_curve` | training loss per step, one line per run |

Each returns the paths it wrote. Inputs are DataFrames or CSV/JSON paths. What each figure
shows in words (the report's captions) is `views.FIGURE_CAPTIONS`.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import matplotlib

if "MPLBACKEND" not in os.environ:      # a notebook keeps its inline backend
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from skillmix_utils.core.metrics import wilson_interval  # noqa: E402
from skillmix_utils.present.paper_tables import (  # noqa: E402
    METRIC_LABELS,
    is_tuned,
    main_grader,
    ordered_settings,
    paper_numbers,
    read_table,
    student_label,
)

# Plain text, not mathtext: "$_{held-out}$" renders a minus sign, not a hyphen.
SETTING_TITLES = {"train": "SKILL-MIX (train)", "held_out": "SKILL-MIX (held-out)",
                  "all": "SKILL-MIX (all)", "custom": "custom"}
# The paper's models as marks: one shape each, hollow for the base model, filled when tuned.
PAPER_MARKERS = ("*", "D", "P", "X")

def interval_bars(rows: pd.DataFrame, metric: str) -> list[list[float]]:
    """Lower and upper error-bar lengths of each row: ±1 SEM, or where the SEM is 0 or missing
    (every combination scored alike, or n = 1) the 95% Wilson interval of the mean over
    n_combinations, so that no point is drawn as if it were certain.

    >>> interval_bars(pd.DataFrame({"m": [0.0, 0.5], "m_sem": [0.0, 0.1], "n_combinations": [12, 12]}), "m")
    [[0.0, 0.1], [0.2425, 0.1]]
    """
    low, high = [], []
    for r in rows.to_dict("records"):
        mean, sem, n = r.get(metric), r.get(f"{metric}_sem"), r.get("n_combinations")
        if sem is not None and sem == sem and sem > 0:
            low.append(sem)
            high.append(sem)
        elif n is not None and n == n and n > 0 and mean == mean:
            lo, hi = wilson_interval(mean * n, int(n))
            low.append(round(mean - lo, 4))
            high.append(round(hi - mean, 4))
        else:
            low.append(math.nan)
            high.append(math.nan)
    return [low, high]


def _legend_labels(df: pd.DataFrame) -> pd.Series:
    """Legend entries: the student, and for fine-tuned students the data mix they were trained
    on ("tuned · D(1,2,3)") rather than the run's folder name. Base students, the same in every
    run, get one entry.

    >>> _legend_labels(pd.DataFrame({"student": ["base", "tuned"], "adapter": [None, "a/adapter"],
    ...                              "train_data": [None, "D(1,2,3)"]})).tolist()
    ['base', 'tuned · D(1,2,3)']
    """
    if "train_data" in df.columns and df["train_data"].notna().any():
        tuned = [is_tuned(a) for a in df.get("adapter", [None] * len(df))]
        return pd.Series([f"{s} · {d}" if t and isinstance(d, str) else str(s)
                          for s, d, t in zip(df["student"], df["train_data"], tuned)], index=df.index)
    return student_label(df)


def _n_note(df: pd.DataFrame) -> str:
    """ "n = 6" (or "n = 4-6") combinations per point, from the n_combinations column."""
    if "n_combinations" not in df.columns or df["n_combinations"].dropna().empty:
        return ""
    lo, hi = int(df["n_combinations"].min()), int(df["n_combinations"].max())
    return f"n = {lo}" if lo == hi else f"n = {lo}–{hi}"


def save_figure(fig, out_dir, name: str) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def figure2_full_marks(metrics, out_dir, grader: str | None = None, metric: str = "ratio_full_marks",
                       paper_marks: bool = True, name: str = "figure2_full_marks") -> list[Path]:
    """Figure 2: `metric` against k for every student, one panel per setting, SEM error bars
    (`interval_bars`: the Wilson interval where the SEM is 0).

    Base students are drawn dashed, fine-tuned ones solid. The paper's quoted base / fine-tuned
    numbers for the panel's setting and the figure's k appear as hollow / filled black marks,
    one shape per paper model, labelled "paper (LLaMA-2-13B-Chat)", whatever the students are.
    """
    df = read_table(metrics)
    if df.empty:
        return []
    g = main_grader(df, grader)
    if g is not None:
        df = df[df["grader"].astype(str) == g]
    df = df.assign(_label=_legend_labels(df), _tuned=[is_tuned(a) for a in df.get("adapter", [None] * len(df))])
    df = df.drop_duplicates(subset=["_label", "setting", "k"])
    settings = ordered_settings(df["setting"])
    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(1, len(settings), figsize=(3.6 * len(settings), 3.2), sharey=True, squeeze=False)
    labels = list(dict.fromkeys(df["_label"]))
    palette = dict(zip(labels, sns.color_palette("colorblind", len(labels))))
    ref = paper_numbers() if paper_marks and metric == "ratio_full_marks" else pd.DataFrame()
    shapes = dict(zip(dict.fromkeys(ref.get("label", [])), PAPER_MARKERS * 2))
    for ax, setting in zip(axes[0], settings):
        part = df[df["setting"] == setting]
        for i, label in enumerate(labels):
            rows = part[part["_label"] == label].sort_values("k")
            if rows.empty:
                continue
            tuned = bool(rows["_tuned"].iloc[0])
            dodge = (i - (len(labels) - 1) / 2) * 0.05     # keep overlapping error bars apart
            ax.errorbar(rows["k"] + dodge, rows[metric], yerr=interval_bars(rows, metric), label=label,
                        color=palette[label], marker="o", ms=4, capsize=3, lw=1.5,
                        ls="-" if tuned else "--")
        if not ref.empty:
            here = ref[(ref["setting"] == setting) & ref["k"].isin(df["k"].unique())]
            for r in here.itertuples():
                size = 110 if shapes[r.label] == "*" else 45
                ax.scatter([r.k + 0.12], [r.base], marker=shapes[r.label], s=size, facecolors="none",
                           edgecolors="black", zorder=5, label=f"paper ({r.label}), base")
                ax.scatter([r.k + 0.12], [r.tuned], marker=shapes[r.label], s=size, color="black",
                           zorder=5, label=f"paper ({r.label}), fine-tuned")
        ax.set_title(SETTING_TITLES.get(setting, setting))
        ax.set_xlabel("k")
        ks = sorted(df["k"].unique())
        ax.set_xticks(ks)
        ax.set_xlim(min(ks) - 0.5, max(ks) + 0.5)    # one k alone: the points stay together
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel(METRIC_LABELS.get(metric, metric) + (f"\n(grader: {g})" if g else ""))
    note = _n_note(df)
    fig.suptitle(f"error bars: ±1 SEM over combinations (95% Wilson interval where the SEM is 0)"
                 f"{', ' + note if note else ''}", fontsize=8, y=1.0, color="0.35")
    handles, names = {}, []
    for ax in axes[0]:
        for h, n in zip(*ax.get_legend_handles_labels()):
            if n not in handles:
                handles[n] = h
                names.append(n)
    names.sort(key=lambda n: (n.startswith("paper "), labels.index(n) if n in labels else 0))
    fig.legend([handles[n] for n in names], names, loc="lower center", ncol=min(4, len(names)),
               bbox_to_anchor=(0.5, -0.02 - 0.06 * ((len(names) - 1) // 4)), frameon=False)
    fig.tight_layout(rect=(0, 0.08 + 0.05 * ((len(names) - 1) // 4), 1, 1))
    return save_figure(fig, out_dir, name)


_CATEGORY_VALUES = ("fraction_earned", "skill_point_rate", "skill_rate", "skill_points", "mean_skill_point",
                    "ratio_skill", "value", "skills_fraction", "ratio_full_marks")


def category_heatmap(per_category, out_dir, value: str | None = None, grader: str | None = None,
                     name: str = "category_heatmap") -> list[Path]:
    """Heat map of a per-category score: categories as rows, student x k as columns (mean over settings)."""
    df = read_table(per_category)
    if df.empty or "category" not in df.columns:
        return []
    if value is None:
        value = next((c for c in _CATEGORY_VALUES if c in df.columns), None)
        if value is None:
            numeric = [c for c in df.select_dtypes("number").columns
                       if c not in ("k", "n", "n_texts", "n_combinations", "n_skill_points", "points_earned") and not c.endswith(("_sem", "_low", "_high"))]
            if not numeric:
                return []
            value = numeric[0]
    g = main_grader(df, grader)
    if g is not None:
        df = df[df["grader"].astype(str) == g]
    cols = [c for c in ("student", "k") if c in df.columns]
    if "student" in df.columns:
        df = df.assign(student=student_label(df))
    wide = df.pivot_table(index="category", columns=cols or None, values=value, aggfunc="mean") if cols \
        else df.groupby("category")[[value]].mean()
    if wide.empty:
        return []
    # Each cell says how many skill points it rests on: 1.00 from 2 points is not 1.00 from 200.
    count = next((c for c in ("n_skill_points", "n") if c in df.columns), None)
    if count is not None:
        counts = (df.pivot_table(index="category", columns=cols or None, values=count, aggfunc="sum")
                  if cols else df.groupby("category")[[count]].sum()).reindex_like(wide)
        annot = wide.map(lambda v: "" if pd.isna(v) else f"{v:.2f}") + counts.map(
            lambda n: "" if pd.isna(n) else f"\nn={int(n)}")
    else:
        annot = True
    if isinstance(wide.columns, pd.MultiIndex):
        wide.columns = [" k=".join(str(x) for x in c) if len(cols) == 2 else str(c[0]) for c in wide.columns]
    sns.set_theme(style="white", context="paper")
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * wide.shape[1], 1.0 + 0.5 * wide.shape[0]))
    label = {"fraction_earned": "fraction of skill points earned"}.get(value, value)
    sns.heatmap(wide, annot=annot if annot is True else annot.to_numpy(), fmt=".2f" if annot is True else "",
                vmin=0, vmax=1, cmap="viridis", ax=ax, cbar_kws={"label": label})
    ax.set_xlabel("")
    ax.set_ylabel("skill category")
    ax.set_title(f"{label} by skill category" + (f" (grader: {g})" if g else ""))
    plt.setp(ax.get_xticklabels(), rotation=40, ha="right")
    plt.setp(ax.get_yticklabels(), rotation=0)
    return save_figure(fig, out_dir, name)


def read_loss(path) -> pd.DataFrame:
    """A loss.json as a frame with columns step, loss (accepts a list of {step, loss} rows,
    {"steps": [...], "loss": [...]} or {"history": [...]})."""
    data = json.loads(Path(path).read_text())
    if isinstance(data, dict):
        if isinstance(data.get("history"), list):
            data = data["history"]
        elif "loss" in data and isinstance(data["loss"], list):
            steps = data.get("steps") or data.get("step") or list(range(1, len(data["loss"]) + 1))
            data = [{"step": s, "loss": l} for s, l in zip(steps, data["loss"])]
        elif "records" in data:
            data = data["records"]
    df = pd.DataFrame(data)
    if "loss" not in df.columns:
        return pd.DataFrame(columns=["step", "loss"])
    if "step" not in df.columns:
        df["step"] = range(1, len(df) + 1)
    return df[["step", "loss"]].dropna()


def loss_curve(loss_files, out_dir, name: str = "loss_curve") -> list[Path]:
    """Training loss against step, one line per `train/<run>/loss.json`."""
    loss_files = [Path(p) for p in ([loss_files] if isinstance(loss_files, (str, Path)) else loss_files)]
    sns.set_theme(style="whitegrid", context="paper")
    fig, ax = plt.subplots(figsize=(5, 3.2))
    drawn = 0
    for path in loss_files:
        df = read_loss(path)
        if not df.empty:
            ax.plot(df["step"], df["loss"], marker="." if len(df) < 50 else None, label=path.parent.name)
            drawn += 1
    if not drawn:
        plt.close(fig)
        return []
    from matplotlib.ticker import MaxNLocator

    # Steps are whole numbers (a 3-step run drew 1.25, 1.5, ...), and a loss that moves little
    # gets a few round ticks, not one every 0.005.
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (answer tokens)")
    ax.legend(frameon=False)
    return save_figure(fig, out_dir, name)


def write_figures(tables_dir, out_dir, grader: str | None = None, loss_files=()) -> dict[str, Path]:
    """Every figure the tables allow: Figure 2 (RFM, and the same for Skills Fraction), the
    per-category heat map, and the loss curves; returns {"figure2_full_marks.png": path, ...}."""
    tables_dir = Path(tables_dir)
    metrics = read_table(tables_dir / "metrics.csv")
    paths = []
    if not metrics.empty:
        paths += figure2_full_marks(metrics, out_dir, grader)
        paths += figure2_full_marks(metrics, out_dir, grader, metric="skills_fraction",
                                    name="figure2_skills_fraction")
    paths += category_heatmap(tables_dir / "per_category.csv", out_dir, grader=grader)
    if loss_files:
        paths += loss_curve(loss_files, out_dir)
    return {p.name: p for p in paths}


def catalog_counts(catalog, out_dir, name: str = "catalog_counts") -> list[Path]:
    """Bar chart of skills per category, coloured by split (train / held_out)."""
    df = pd.DataFrame([{"category": s.category, "split": s.split} for s in catalog.skills])
    counts = df.groupby(["category", "split"]).size().reset_index(name="skills")
    sns.set_theme(style="whitegrid", context="paper")
    fig, ax = plt.subplots(figsize=(6, 0.4 + 0.35 * df["category"].nunique()))
    sns.barplot(counts, y="category", x="skills", hue="split", ax=ax,
                order=list(dict.fromkeys(df["category"])), palette="colorblind")
    ax.set_title(f"{len(df)} skills, {len(catalog.topics)} topics")
    return save_figure(fig, out_dir, name)


def keep_rate(data_card: dict, out_dir, name: str = "keep_rate") -> list[Path]:
    """The keep rate (kept / graded teacher texts) per k with its 95% Wilson interval (never
    empty: 0 kept of 2 is not a certain 0), each bar labelled with its counts, from
    data/data_card.json (as a dict)."""
    per_k = pd.DataFrame(data_card.get("per_k", {})).T
    if per_k.empty or "graded" not in per_k.columns:
        return []
    per_k.index.name = "k"
    df = per_k.reset_index()
    df["graded"] = df["graded"].astype(int)
    df["kept"] = df["kept"].astype(int)
    df["rate"] = [k / g if g else float("nan") for k, g in zip(df["kept"], df["graded"])]
    bounds = [wilson_interval(k, g) if g else (math.nan, math.nan)
              for k, g in zip(df["kept"], df["graded"])]
    yerr = [[r - lo for r, (lo, _) in zip(df["rate"], bounds)],
            [hi - r for r, (_, hi) in zip(df["rate"], bounds)]]
    sns.set_theme(style="whitegrid", context="paper")
    fig, ax = plt.subplots(figsize=(4.5, 3))
    colour = sns.color_palette("colorblind")[0]
    ax.bar(df["k"].astype(str), df["rate"], yerr=yerr, capsize=3, color=colour)
    for i, r in df.iterrows():
        # beside the bar's interval line, not on it
        ax.annotate(f"{r['kept']}/{r['graded']}", (i + 0.06, (r["rate"] if r["rate"] == r["rate"] else 0) + 0.03),
                    ha="left", fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("k")
    ax.set_ylabel("keep rate (kept / graded)")
    ax.set_title("teacher texts kept (full marks), 95% Wilson interval")
    return save_figure(fig, out_dir, name)
