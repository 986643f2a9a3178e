"""The results a run ends with, in the terminal (as lm-eval and alpaca_eval print theirs):
`skillmix run` and `skillmix metrics` print the main table (student, setting, k, n and the
three SKILL-MIX metrics, each with its 95% interval), who graded it, and the report's path.

    from skillmix_utils.present.results import results_text
    print(results_text("outputs/demo"))
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from skillmix_utils.core.numbers import INTERVAL_NOTE, row_estimate
from skillmix_utils.present.paper_tables import (
    judge_of,
    main_grader,
    read_table,
    student_label,
)

if TYPE_CHECKING:    # annotations only; pandas loads with the first table (the CLI starts without it)
    import pandas as pd


SHORT_LABELS = {"ratio_full_marks": "full marks", "ratio_all_skills": "all skills",
                "skills_fraction": "skills fraction"}


def metrics_path(out) -> Path:
    """The metrics a study's results come from: a grid's stacked `grid/metrics.csv` when the
    study is a grid, else `eval/tables/metrics.csv`."""
    out = Path(out)
    grid = out / "grid" / "metrics.csv"
    return grid if grid.exists() else out / "eval" / "tables" / "metrics.csv"


def results_table(metrics, grader: str | None = None) -> pd.DataFrame:
    """One row per student (grid run / student in a grid) x setting x k of the main grader:
    n (combinations) and each metric as "mean [low, high]" (`numbers.row_estimate`)."""
    import pandas as pd  # heavy
    df = read_table(metrics)
    g = main_grader(df, grader)
    if g is None:
        return pd.DataFrame()
    df = df[df["grader"].astype(str) == g]
    table = pd.DataFrame({"student": student_label(df), "setting": df["setting"], "k": df["k"],
                          "n": df["n_combinations"]})
    for metric, label in SHORT_LABELS.items():
        table[label] = [row_estimate(r, metric, with_n=False, with_sem=False)
                        for r in df.to_dict("records")]
    return table.reset_index(drop=True)


def plain_table(df: pd.DataFrame) -> str:
    """A table as left-aligned text columns, two spaces apart (a terminal's table).

    >>> import pandas as pd
    >>> print(plain_table(pd.DataFrame({"student": ["base"], "k": [3]})))
    student  k
    base     3
    """
    cells = [list(map(str, df.columns))] + [[str(v) for v in row] for row in df.itertuples(index=False)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(df.columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def results_text(out, grader: str | None = None) -> str:
    """The end-of-run summary of the study in `out`: a heading naming the judge, the results
    table, and where the report is; "" when the study has no metrics yet."""
    out = Path(out).resolve()
    df = read_table(metrics_path(out))
    table = results_table(df, grader)
    if table.empty:
        return ""
    g = main_grader(df, grader)
    others = [x for x in dict.fromkeys(df["grader"].astype(str)) if x != g]
    reports = ([out / "report.html"] if not (out / "grid" / "metrics.csv").exists()
               else sorted(out.glob("grid/*/report.html")))
    lines = [f"Results, {judge_of(df, g)}.",
             f"Each cell: mean over n combinations [95% interval: {INTERVAL_NOTE}].",
             "", plain_table(table), ""]
    if others:
        lines.append(f"other graders ({', '.join(others)}): {metrics_path(out)}")
    built = [r for r in reports if r.exists()]
    lines += [f"report: {r}" for r in built] or [
        f"report: not built yet (notebook 05 writes {out / 'report.html'})"]
    return "\n".join(lines)
