"""The model-size ladder (configs/model-scale.yaml): held-out success against the student's size.

After a grid whose runs train different base models, `write_model_scale` reads the stacked
`grid/metrics.csv` (column `run`) and each run's config, sizes each base model (its
config.json offline, else the known shapes of stages/train/plan.py) and writes

- figures/model_scale.png|.pdf: Ratio of Full Marks on the held-out setting at k = `K`
  (3, the paper's headline; else the largest k evaluated) against parameters (log scale), the
  base students dashed with open circles, the tuned ones solid, 95% intervals, each point's
  training mode named; the paper's LLaMA-2-13B-Chat and Mistral-7B (base hollow, tuned filled
  stars, as in Figure 2) at their sizes;
- tables/model_scale.csv|.md: the numbers behind it.

A grid whose runs share one base model (the embedded model standing in for every size in the
tests) has no size axis: nothing is written.
"""
from __future__ import annotations

from pathlib import Path

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.present.figures import save_figure
from skillmix_utils.present.paper_tables import is_tuned, main_grader, paper_numbers, to_markdown
from skillmix_utils.stages.train.memory import LLAMA2_13B, MISTRAL_7B
from skillmix_utils.stages.train.plan import shape_for

SETTING, K = "held_out", 3
PAPER_SIZES = {"llama-2-13b-chat": LLAMA2_13B.params, "mistral-7b-instruct-v0.2": MISTRAL_7B.params}


def scale_frame(metrics, runs: list[tuple[str, StudyConfig]], metric: str = "ratio_full_marks"):
    """One row per (run, base or tuned) at the held-out setting and k = K (else the largest k):
    base model, parameters, training mode, the metric and its interval. Empty unless the runs
    train at least two base models that can be sized."""
    import pandas as pd

    sizes = {}
    for label, cfg in runs:
        if cfg.train is None:
            continue
        try:
            sizes[label] = (cfg.train.base_model, shape_for(cfg.train.base_model).params, cfg.train.mode)
        except SkillmixError:
            continue
    df = metrics[(metrics["setting"] == SETTING) & metrics["run"].isin(list(sizes))]
    if len({model for model, _, _ in sizes.values()}) < 2 or df.empty:
        return pd.DataFrame()
    g = main_grader(df)
    df = df[df["grader"] == g]
    k = K if (df["k"] == K).any() else int(df["k"].max())
    df = df[df["k"] == k]
    rows = []
    for r in df.to_dict("records"):
        model, params, mode = sizes[r["run"]]
        rows.append({"run": r["run"], "base_model": model, "params_billion": round(params / 1e9, 2),
                     "mode": mode, "student": "tuned" if is_tuned(r.get("adapter")) else "base",
                     "grader": g, "setting": SETTING, "k": k, metric: r[metric],
                     "ci_low": r.get(f"{metric}_ci_low"), "ci_high": r.get(f"{metric}_ci_high"),
                     "n_combinations": r.get("n_combinations")})
    return pd.DataFrame(rows).sort_values(["params_billion", "student"]).reset_index(drop=True)


def model_scale_figure(frame, out_dir, metric: str = "ratio_full_marks",
                       name: str = "model_scale") -> list[Path]:
    """The figure of `scale_frame`'s rows, with the paper's two models marked."""
    import matplotlib.pyplot as plt

    if frame.empty:
        return []
    k = int(frame["k"].iloc[0])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for student, style, marker, face in (("base", "--", "o", "none"), ("tuned", "-", "o", None)):
        part = frame[frame["student"] == student].sort_values("params_billion")
        if part.empty:
            continue
        y = part[metric]
        err = [(y - part["ci_low"]).clip(lower=0).fillna(0), (part["ci_high"] - y).clip(lower=0).fillna(0)]
        line = ax.errorbar(part["params_billion"], y, yerr=err, linestyle=style, marker=marker,
                           capsize=3, label=f"{student} (this study)",
                           markerfacecolor=face if face else None)
        if student == "tuned":
            for x, v, mode in zip(part["params_billion"], y, part["mode"]):
                ax.annotate(mode, (x, v), textcoords="offset points", xytext=(4, 6), fontsize=7,
                            color=line[0].get_color())
    paper = paper_numbers()
    paper = paper[(paper["setting"] == SETTING) & (paper["k"] == k)]
    for r in paper.to_dict("records"):
        x = PAPER_SIZES.get(r["model"], 0) / 1e9
        if not x:
            continue
        ax.scatter([x], [r["base"]], marker="*", s=140, facecolors="none", edgecolors="black", zorder=3)
        ax.scatter([x], [r["tuned"]], marker="*", s=140, color="black", zorder=3)
        ax.annotate(f"{r['label']} (paper)", (x, r["tuned"]), textcoords="offset points",
                    xytext=(6, -3), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("parameters (billions, log scale)")
    ax.set_ylabel(f"Ratio of Full Marks, held-out, k = {k}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Skill composition against model size (grader {frame['grader'].iloc[0]}); "
                 "stars: the paper, hollow base, filled tuned", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    return save_figure(fig, out_dir, name)


def write_model_scale(out: Path, runs: list[tuple[str, StudyConfig]], metrics) -> dict[str, Path]:
    """figures/model_scale.png|.pdf and tables/model_scale.csv|.md, when the grid spans sizes."""
    frame = scale_frame(metrics, runs)
    if frame.empty:
        return {}
    tables = Path(out) / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    paths = {"model_scale_csv": tables / "model_scale.csv", "model_scale_md": tables / "model_scale.md"}
    frame.to_csv(paths["model_scale_csv"], index=False)
    paths["model_scale_md"].write_text(to_markdown(frame) + "\n")
    for p in model_scale_figure(frame, Path(out) / "figures"):
        paths[p.name] = p
    return paths
