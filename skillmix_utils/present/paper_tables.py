"""The paper's tables from a study's metric tables, as Markdown and LaTeX files.

    from skillmix_utils.present.paper_tables import write_paper_tables
    write_paper_tables("outputs/demo/eval/tables/metrics.csv", "outputs/demo/tables")

Input is `eval/tables/metrics.csv` (one row per student x setting x k x grader, written by
`stages.tables.write_metric_tables`), optionally `agreement.csv`. Every cell is
"mean ± SEM (n=N) [95% interval]" (`numbers.format_estimate`): the paper printed no error bars,
we print the number of combinations and the interval with every number, and each caption names
the grader (and says so when it is a local judge, not GPT-4). Each table is written as Markdown,
LaTeX and CSV. Which paper table each file mirrors:

| file | paper | rows x columns |
|---|---|---|
| table2_full_marks | Tables 2-3, Ratio of Full Marks | student (or grid run / student) x setting, k |
| table3_skills_fraction | Tables 2-3, Skills Fraction | the same |
| table4_data_efficiency | Table 4 | training data (mix or sub-sample) x setting, k; grids only |
| table5_graders | Table 5 | student x setting x k, one column per grader |
| table6_agreement | Table 6 | grader agreement as `agreement.csv` holds it |
| paper_comparison | the numbers quoted in the text (docs/protocol.md §8), each beside the run with the same student and data mix | where a student is a paper model |
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from skillmix_utils.core.numbers import CELL_NOTE, judge_phrase, row_estimate

if TYPE_CHECKING:    # annotations only; pandas loads with the first table (the CLI starts without it)
    import pandas as pd

SETTING_ORDER = ["train", "held_out", "all", "custom"]
METRIC_LABELS = {"ratio_full_marks": "Ratio of Full Marks", "ratio_all_skills": "Ratio of All Skills",
                 "skills_fraction": "Skills Fraction"}


def read_table(data) -> pd.DataFrame:
    """A DataFrame from a DataFrame or a CSV path (a missing or empty file gives an empty frame)."""
    import pandas as pd  # heavy
    if isinstance(data, pd.DataFrame):
        return data.copy()
    path = Path(data)
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def judge_of(df: pd.DataFrame, grader: str | None) -> str:
    """"graded by ..." for a table's grader, from its metrics rows (model and method when the
    table has them; `numbers.judge_phrase`); "" when the table names no grader."""
    if grader is None or "grader" not in df.columns:
        return ""
    rows = df[df["grader"].astype(str) == grader]
    first = rows.iloc[0] if len(rows) else {}
    return judge_phrase(grader, first.get("grader_model"), first.get("grader_method"))


def is_tuned(adapter) -> bool:
    """Whether a metrics row belongs to a fine-tuned student (it names an adapter/checkpoint)."""
    return isinstance(adapter, str) and adapter.strip() not in ("", "nan", "None")


def student_label(df: pd.DataFrame) -> pd.Series:
    """Row labels: the student name, prefixed by the grid run when a table holds several runs."""
    label = df["student"].astype(str)
    if "run" in df.columns and df["run"].nunique() > 1:
        label = df["run"].astype(str) + " / " + label
    return label


def main_grader(df: pd.DataFrame, grader: str | None = None) -> str | None:
    """The grader a table reports: the one asked for, else the first listed (the config's first)."""
    if "grader" not in df.columns or df.empty:
        return None
    if grader is not None:
        return grader
    return str(df["grader"].iloc[0])


def ordered_settings(values) -> list[str]:
    vals = list(dict.fromkeys(values))
    return sorted(vals, key=lambda s: (SETTING_ORDER.index(s) if s in SETTING_ORDER else 99, s))


def metric_table(metrics, metric: str = "ratio_full_marks", grader: str | None = None,
                 rows: str = "student", with_n: bool = True) -> pd.DataFrame:
    """Wide table: one row per (student or `rows` column, setting), one column per k, each cell
    "0.08 ± 0.08 (n=12) [0.01, 0.35]" (`numbers.row_estimate`: a SEM of 0 alone would look
    certain). `with_n=False` leaves out n and the interval."""
    import pandas as pd  # heavy
    df = read_table(metrics)
    if df.empty:
        return pd.DataFrame()
    g = main_grader(df, grader)
    if g is not None:
        df = df[df["grader"].astype(str) == g]
    df = df.assign(_row=student_label(df) if rows == "student" else df[rows].astype(str))
    df = df.assign(_cell=[row_estimate(r, metric, with_n=with_n, with_interval=with_n)
                          for r in df.to_dict("records")])
    wide = df.pivot_table(index=["_row", "setting"], columns="k", values="_cell", aggfunc="first", sort=False)
    wide = wide.reindex(columns=sorted(wide.columns))
    wide.columns = [f"k={k}" for k in wide.columns]
    order = {s: i for i, s in enumerate(ordered_settings(df["setting"]))}
    rows_order = list(dict.fromkeys(df["_row"]))
    wide = wide.reset_index()
    wide["_o1"] = wide["_row"].map(rows_order.index)
    wide["_o2"] = wide["setting"].map(order)
    wide = wide.sort_values(["_o1", "_o2"]).drop(columns=["_o1", "_o2"])
    wide = wide.rename(columns={"_row": "student" if rows == "student" else rows})
    return wide.fillna("–").reset_index(drop=True)


def grader_table(metrics, metric: str = "ratio_full_marks") -> pd.DataFrame:
    """Table 5: one column per grader (mean ± SEM (n) [interval]), rows student x setting x k;
    empty if one grader."""
    import pandas as pd  # heavy
    df = read_table(metrics)
    if df.empty or "grader" not in df.columns or df["grader"].nunique() < 2:
        return pd.DataFrame()
    df = df.assign(student=student_label(df),
                   _cell=[row_estimate(r, metric) for r in df.to_dict("records")])
    wide = df.pivot_table(index=["student", "setting", "k"], columns="grader", values="_cell",
                          aggfunc="first", sort=False)
    wide = wide.reindex(columns=list(dict.fromkeys(df["grader"])))
    return wide.reset_index().fillna("–")


def data_efficiency_table(metrics, metric: str = "ratio_full_marks",
                          grader: str | None = None) -> pd.DataFrame:
    """Table 4: fine-tuned students by training data (`train_data` column, e.g. "D(1,2,3)" or
    "sub8000"), with the number of training texts when known; empty unless two kinds exist."""
    import pandas as pd  # heavy
    df = read_table(metrics)
    if df.empty or "train_data" not in df.columns:
        return pd.DataFrame()
    df = df[[is_tuned(a) for a in df.get("adapter", [None] * len(df))]]
    if df["train_data"].nunique() < 2:
        return pd.DataFrame()
    if "n_train_texts" in df.columns:
        df = df.assign(train_data=[f"{d} (n={int(n)})" if pd.notna(n) else str(d)
                                   for d, n in zip(df["train_data"], df["n_train_texts"])])
    return metric_table(df, metric=metric, grader=grader, rows="train_data")


def agreement_table(agreement) -> pd.DataFrame:
    """Table 6: the agreement CSV with numbers rounded to 3 places."""
    import pandas as pd  # heavy
    df = read_table(agreement)
    if df.empty:
        return df
    return df.apply(lambda c: c.round(3) if pd.api.types.is_float_dtype(c) else c)


# --- the paper's quoted numbers -------------------------------------------------------------

@lru_cache(maxsize=1)
def _paper_yaml() -> dict:
    return yaml.safe_load(resources.files("skillmix_utils").joinpath("data/paper_numbers.yaml").read_text())


def paper_numbers() -> pd.DataFrame:
    """The paper's quoted results (docs/protocol.md §8): columns model, label, setting, k, base,
    tuned, data_mix."""
    import pandas as pd  # heavy
    doc = _paper_yaml()
    df = pd.DataFrame(doc["results"])
    df["label"] = df["model"].map(lambda m: doc["models"][m]["label"])
    return df


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9.]", "", str(name).lower().split(":", 1)[-1])


def match_paper_model(names) -> str | None:
    """The paper model a student is, from its model spec / base model / name, or None.

    >>> match_paper_model(["hf:llama-2-13b-chat"]), match_paper_model(["hf:smollm2-135m-instruct"])
    ('llama-2-13b-chat', None)
    >>> match_paper_model(["mistralai/Mistral-7B-Instruct-v0.2"])
    'mistral-7b-instruct-v0.2'
    """
    if isinstance(names, str):
        names = [names]
    for key, entry in _paper_yaml()["models"].items():
        aliases = [_norm(a) for a in [key, *entry.get("aliases", [])]]
        for name in names:
            n = _norm(name)
            if any(a and a in n for a in aliases):
                return key
    return None


def paper_reference(metrics) -> pd.DataFrame:
    """The quoted numbers for the paper models among a study's students (empty if none)."""
    import pandas as pd  # heavy
    df = read_table(metrics)
    if df.empty:
        return pd.DataFrame()
    cols = [c for c in ("base_model", "student") if c in df.columns]
    models = {match_paper_model([str(v) for v in row]) for row in df[cols].itertuples(index=False)}
    models.discard(None)
    ref = paper_numbers()
    return ref[ref["model"].isin(models)].reset_index(drop=True)


def _mix_key(value) -> str | None:
    """A data mix as comparable text: "D(1,2,3)", "1,2,3", "[3, 2, 1]", "k1-2-3" -> "1,2,3";
    a sub-sample name or nothing -> None (no paper number is for a sub-sample).

    >>> _mix_key("D(1,2,3)"), _mix_key("3, 2, 1"), _mix_key("k1-2"), _mix_key("sub8000"), _mix_key(None)
    ('1,2,3', '1,2,3', '1,2', None, None)
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    m = re.fullmatch(r"(?:D\(|k|\[)?\s*(\d+(?:\s*[,\-]\s*\d+)*)\s*[)\]]?", text)
    if not m:
        return None
    return ",".join(str(k) for k in sorted({int(x) for x in re.findall(r"\d+", m.group(1))}))


def _rows(df: pd.DataFrame, mask) -> pd.DataFrame:
    """The rows where `mask` (a list of booleans) holds; an empty mask gives no row."""
    import numpy as np

    return df[np.asarray(list(mask), dtype=bool)] if len(df) else df


def _where(row) -> str:
    """How a metrics row is named in the comparison: grid run (if any) / student."""
    run = getattr(row, "run", None)
    return f"{run} / {row.student}" if isinstance(run, str) and run else str(row.student)


def paper_comparison_table(metrics, grader: str | None = None) -> pd.DataFrame:
    """The paper's quoted base -> tuned numbers beside this study's, each matched to the row
    with the same student model, setting, k and **training data mix** (a tuned row's
    `train_data`; in a grid, the run that trained on that mix). The columns "ours base from" and
    "ours tuned from" name the run and student each number was taken from; "–" where the study
    has no such row (e.g. no run trained on D(1,2,3))."""
    import pandas as pd  # heavy
    df = read_table(metrics)
    ref = paper_reference(df)
    if ref.empty:
        return pd.DataFrame()
    g = main_grader(df, grader)
    df = df[df["grader"].astype(str) == g] if g else df
    has_mix = "train_data" in df.columns
    rows = []
    for r in ref.itertuples():
        # A quoted number whose setting the paper does not state is set beside our "all" rows.
        setting = r.setting if isinstance(r.setting, str) else "all"
        mine = df[(df["k"] == r.k) & (df["setting"] == setting)]
        mine = _rows(mine, [match_paper_model([str(b), str(s)]) == r.model for b, s in
                            zip(mine.get("base_model", mine["student"]), mine["student"])])
        adapters = mine.get("adapter", pd.Series([None] * len(mine), index=mine.index))
        base = _rows(mine, [not is_tuned(a) for a in adapters])
        tuned = _rows(mine, [is_tuned(a) for a in adapters])
        note = ""
        if has_mix:
            tuned = _rows(tuned, [_mix_key(m) == _mix_key(r.data_mix) for m in tuned["train_data"]])
        elif len(tuned) > 1:      # several tuned rows and no record of their data: no guess
            tuned, note = tuned.iloc[0:0], " (data mix of the tuned rows not recorded)"
        elif len(tuned) == 1:
            note = " (data mix not recorded)"

        def cell(d):
            return row_estimate(d.iloc[0], "ratio_full_marks") if len(d) else "–"

        rows.append({"model": r.label,
                     "setting": r.setting if isinstance(r.setting, str) else "not stated (ours: all)",
                     "k": r.k, "data mix": f"D({r.data_mix})",
                     "paper base": f"{r.base:.2f}", "paper tuned": f"{r.tuned:.2f}",
                     "ours base": cell(base), "ours tuned": cell(tuned),
                     "ours base from": _where(next(base.itertuples())) if len(base) else "–",
                     "ours tuned from": (_where(next(tuned.itertuples())) + note) if len(tuned)
                     else "no run trained on " + f"D({r.data_mix})" + note})
    return pd.DataFrame(rows)


# --- writers ---------------------------------------------------------------------------------

def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table.

    >>> import pandas as pd
    >>> print(to_markdown(pd.DataFrame({"a": [1], "b": ["x|y"]})))
    | a | b |
    |---|---|
    | 1 | x\\|y |
    """
    esc = lambda v: str(v).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(esc(c) for c in df.columns) + " |",
             "|" + "|".join("---" for _ in df.columns) + "|"]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def to_latex(df: pd.DataFrame, caption: str = "", label: str = "") -> str:
    """A booktabs LaTeX table (needs \\usepackage{booktabs})."""
    esc = lambda v: (str(v).replace("\\", r"\textbackslash{}").replace("&", r"\&").replace("%", r"\%")
                     .replace("_", r"\_").replace("#", r"\#").replace("±", r"$\pm$").replace("–", "--"))
    out = [r"\begin{table}[t]", r"\centering", r"\small",
           r"\begin{tabular}{" + "l" * min(2, len(df.columns)) + "c" * max(0, len(df.columns) - 2) + "}",
           r"\toprule", " & ".join(esc(c) for c in df.columns) + r" \\", r"\midrule"]
    out += [" & ".join(esc(v) for v in row) + r" \\" for row in df.itertuples(index=False)]
    out += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        out.append(r"\caption{" + esc(caption) + "}")
    if label:
        out.append(r"\label{" + label + "}")
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


def write_table(df: pd.DataFrame, out_dir, name: str, caption: str = "") -> list[Path]:
    """Write `name.md` (caption as a heading line), `name.tex` and `name.csv` (the same cells;
    the caption as a first `#` line, which `pd.read_csv(path, comment="#")` skips); returns
    the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, tex, csv = (out_dir / f"{name}.{ext}" for ext in ("md", "tex", "csv"))
    md.write_text((f"**{caption}**\n\n" if caption else "") + to_markdown(df) + "\n")
    tex.write_text(to_latex(df, caption, f"tab:{name}"))
    csv.write_text((f"# {caption}\n" if caption else "") + df.to_csv(index=False))
    return [md, tex, csv]


def write_paper_tables(metrics, out_dir, agreement=None, grader: str | None = None) -> dict[str, Path]:
    """Write every paper table the data allows into `out_dir`; returns {"table2_full_marks.md": path, ...}.

    `metrics` is metrics.csv (path or DataFrame); tables whose inputs are missing are skipped
    (Table 4 needs a grid over training data, Table 5 two graders, Table 6 an agreement file).
    """
    import pandas as pd  # heavy
    df = read_table(metrics)
    g = main_grader(df, grader)
    by = "; " + judge_of(df, g) if g else ""
    cells = CELL_NOTE
    judges = "".join("; " + judge_of(df, x) for x in dict.fromkeys(df["grader"].astype(str))) \
        if g else ""
    tables = {
        "table2_full_marks": (metric_table(df, "ratio_full_marks", g), f"Ratio of Full Marks, {cells}{by}"),
        "table3_skills_fraction": (metric_table(df, "skills_fraction", g), f"Skills Fraction, {cells}{by}"),
        "table4_data_efficiency": (data_efficiency_table(df, "ratio_full_marks", g),
                                   f"Data efficiency: fine-tuned students by training data, Ratio of "
                                   f"Full Marks, {cells}{by}"),
        "table5_graders": (grader_table(df), f"Ratio of Full Marks by grader, {cells}{judges}"),
        "table6_agreement": (agreement_table(agreement) if agreement is not None else pd.DataFrame(),
                             "Agreement between graders"),
        "paper_comparison": (paper_comparison_table(df, g),
                             "Ratio of Full Marks quoted in the paper (GPT-4 grader) beside this "
                             f"study's, {cells}{by}"),
    }
    written = {}
    for name, (table, caption) in tables.items():
        if table is None or table.empty:
            continue
        for path in write_table(table, out_dir, name, caption):
            written[path.name] = path
    return written
