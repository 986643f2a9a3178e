"""The self-contained HTML report of a study: `outputs/<study>/report.html`.

    from skillmix_utils.report import build_report
    build_report("outputs/demo")          # -> outputs/demo/report.html

One file that opens from disk with no network: the resolved config, costs (from the records),
the data card, training summaries, the metric and paper tables, the figures (PNG as base64) and
a sample browser over the evaluation (and data-generation) records, filtered in the page by
stage, student, setting, k and skill, showing each text with every grader's reply and points.
The template is `data/templates/report.html.j2`; its CSS and JavaScript are inline.
"""
from __future__ import annotations

import base64
import datetime as _dt
import json
from importlib import resources
from pathlib import Path

import pandas as pd

from . import paper_tables as pt
from .records import RecordStore, TextRecord

METRIC_DEFINITIONS = {
    "Ratio of Full Marks": "share of combinations whose best generation earned all k + 3 points "
                           "(every skill, the topic, makes sense, the length limit)",
    "Ratio of All Skills": "share of combinations whose best generation earned all k skill points "
                           "and at least 2 of the other 3",
    "Skills Fraction": "mean fraction of the k skill points earned, counting a generation only when "
                       "it earned all 3 other points (else 0)",
    "± (SEM)": "one standard error of the mean over the n combinations of the cell; n is in brackets",
    "point": "the majority vote of a grader's rounds per criterion; the length point is always the "
             "deterministic sentence count, and naming a skill verbatim loses that skill's point",
}
METRIC_DEFINITIONS_MD = "\n".join(f"* **{k}**: {v}" for k, v in METRIC_DEFINITIONS.items())

SAMPLE_LIMIT = 2000   # per stage; a bigger study shows the first ones (the JSONL has them all)


def _criteria(rec: TextRecord) -> list[str]:
    c = rec.combination
    return [*c.skills, f"topic: {c.topic}", "makes sense", "length"]


def sample_rows(records, stage: str, limit: int = SAMPLE_LIMIT) -> list[dict]:
    """Records as small dicts for the page's sample browser (text, combination, gradings)."""
    out = []
    for rec in list(records)[:limit]:
        c = rec.combination
        out.append({
            "id": rec.id, "stage": stage, "student": rec.student or rec.model, "setting": c.setting,
            "k": c.k, "skills": list(c.skills), "categories": list(c.categories), "topic": c.topic,
            "round": rec.generation_round, "answer": rec.answer, "status": rec.status, "error": rec.error,
            "rule": rec.extraction_rule, "kept": rec.kept, "criteria": _criteria(rec),
            "sentences": rec.derived.sentence_count, "length_point": rec.derived.length_point,
            "explicit": list(rec.derived.explicit_names), "voted": rec.derived.voted_points,
            "gradings": [{"grader": g.grader, "method": g.method, "round": g.round, "status": g.status,
                          "points": g.points, "total": g.stated_total, "reply": g.raw_reply,
                          "error": g.error} for g in rec.gradings],
        })
    return out


def cost_table(stores: dict[str, list[TextRecord]]) -> pd.DataFrame:
    """Cost and tokens per stage and model: writing (the text) and grading, from record usage."""
    rows = []
    for stage, recs in stores.items():
        for rec in recs:
            rows.append({"stage": stage, "role": "writer", "model": rec.model, "calls": 1,
                         "input_tokens": rec.usage.input_tokens, "output_tokens": rec.usage.output_tokens,
                         "cost_usd": rec.usage.cost_usd, "cached": int(rec.usage.cached)})
            for g in rec.gradings:
                rows.append({"stage": stage, "role": "grader", "model": g.grader, "calls": 1,
                             "input_tokens": g.usage.input_tokens, "output_tokens": g.usage.output_tokens,
                             "cost_usd": g.usage.cost_usd, "cached": int(g.usage.cached)})
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows).groupby(["stage", "role", "model"], sort=False).sum().reset_index()
    total = df[["calls", "input_tokens", "output_tokens", "cost_usd", "cached"]].sum()
    df.loc[len(df)] = {"stage": "total", "role": "", "model": "", **total.to_dict()}
    df["cost_usd"] = df["cost_usd"].map(lambda v: f"{v:.4f}")
    return df


def _html_table(df: pd.DataFrame, cls: str = "data") -> str:
    if df is None or df.empty:
        return ""
    df = df.copy()
    for c in df.columns:
        if pd.api.types.is_float_dtype(df[c]):
            df[c] = df[c].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    return df.to_html(index=False, classes=cls, border=0, escape=True, na_rep="")


def _json_for_script(obj) -> str:
    # Inside <script type="application/json"> only "</" can end the element early.
    return json.dumps(obj, ensure_ascii=False).replace("</", "<\\/")


def _figures(folder: Path) -> list[dict]:
    return [{"name": p.stem, "data": base64.b64encode(p.read_bytes()).decode("ascii")}
            for p in sorted(folder.glob("*.png"))] if folder.is_dir() else []


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def build_report(out_dir, out_path=None, grader: str | None = None,
                 sample_limit: int = SAMPLE_LIMIT) -> Path:
    """Write the study's report.html from what `out_dir` holds and return its path.

    Missing parts (no training, no second grader, no figures yet) are left out, not errors.
    """
    from jinja2 import Environment

    out_dir = Path(out_dir)
    out_path = Path(out_path) if out_path else out_dir / "report.html"
    tables_dir = out_dir / "eval" / "tables"
    stores = {stage: RecordStore(out_dir / sub / "records.jsonl").records()
              for stage, sub in (("eval", "eval"), ("datagen", "data"))
              if (out_dir / sub / "records.jsonl").exists()}
    metrics = pt.read_table(tables_dir / "metrics.csv")
    g = pt.main_grader(metrics, grader)
    sections = []
    if not metrics.empty:
        sections.append(("Ratio of Full Marks (Tables 2-3)", _html_table(pt.metric_table(metrics, "ratio_full_marks", g, with_n=True), "data metrics")))
        sections.append(("Skills Fraction (Tables 2-3)", _html_table(pt.metric_table(metrics, "skills_fraction", g, with_n=True), "data metrics")))
        sections.append(("Ratio of All Skills", _html_table(pt.metric_table(metrics, "ratio_all_skills", g, with_n=True), "data metrics")))
        for title, df in (("Data efficiency (Table 4)", pt.data_efficiency_table(metrics, grader=g)),
                          ("Graders compared (Table 5)", pt.grader_table(metrics)),
                          ("Grader agreement (Table 6)", pt.agreement_table(tables_dir / "agreement.csv")),
                          ("The paper's quoted numbers beside ours", pt.paper_comparison_table(metrics, g)),
                          ("Parse failures", pt.read_table(tables_dir / "parse_failures.csv"))):
            if not df.empty:
                sections.append((title, _html_table(df, "data metrics")))
        sections.append(("metrics.csv (all columns)", _html_table(metrics, "data metrics wide")))
    train = []
    for summary in sorted(out_dir.glob("train/*/train_summary.json")):
        data = _read_json(summary)
        if data is not None:
            train.append({"run": summary.parent.name, "json": json.dumps(data, indent=2, default=str)})
    samples = [row for stage, recs in stores.items() for row in sample_rows(recs, stage, sample_limit)]
    config_text = (out_dir / "config.yaml").read_text() if (out_dir / "config.yaml").exists() else ""
    card = _read_json(out_dir / "data" / "data_card.json")
    template = resources.files("skillmix_utils").joinpath("data/templates/report.html.j2").read_text()
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    try:
        import yaml

        study = (yaml.safe_load(config_text) or {}).get("name") or out_dir.name
    except Exception:  # noqa: BLE001 - the title is cosmetic
        study = out_dir.name
    html = env.from_string(template).render(
        study=study, generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        grader=g, config_text=config_text, costs=_html_table(cost_table(stores), "data costs"),
        data_card=json.dumps(card, indent=2, default=str) if card is not None else "",
        train=train, sections=sections, figures=_figures(out_dir / "figures"),
        samples_json=_json_for_script(samples), n_samples=len(samples),
        n_records={stage: len(recs) for stage, recs in stores.items()})
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out_path)
    return out_path


def records_frame(records, limit: int | None = None) -> pd.DataFrame:
    """Records as a table for a notebook: id, student, setting, k, skills, topic, answer, kept,
    and each grader's voted points."""
    rows = []
    for rec in list(records)[:limit]:
        c = rec.combination
        row = {"id": rec.id, "student": rec.student or rec.model, "setting": c.setting, "k": c.k,
               "skills": ", ".join(c.skills), "topic": c.topic, "answer": rec.answer,
               "status": rec.status, "kept": rec.kept, "sentences": rec.derived.sentence_count}
        for grader, points in rec.derived.voted_points.items():
            row[f"points: {grader}"] = " ".join("?" if p is None else f"{p:g}" for p in points)
        rows.append(row)
    return pd.DataFrame(rows)


def catalog_frame(catalog) -> pd.DataFrame:
    """The catalog's skills as a table: name, category, split, definition, example."""
    return pd.DataFrame([{"name": s.name, "category": s.category, "split": s.split,
                          "definition": s.definition, "example": s.example} for s in catalog.skills])


def combinations_frame(combinations) -> pd.DataFrame:
    """Sampled combinations as a table: setting, k, index, skills, categories, topic."""
    return pd.DataFrame([{"setting": c.setting, "k": c.k, "index": c.index, "skills": ", ".join(c.skills),
                          "categories": ", ".join(c.categories), "topic": c.topic} for c in combinations])


def local_judges(cfg) -> list[str]:
    """Labels of the config's graders that are local models (hf:) rather than a GPT-4-class API."""
    out = []
    for section in (cfg.data, cfg.evaluation):
        for g in (section.graders if section is not None else []):
            if (g.spec.startswith(("hf:", "vllm:")) or g.method == "yes_no_logprob") and g.label not in out:
                out.append(g.label)
    return out


def judge_banner(cfg_or_labels) -> str | None:
    """A Markdown warning when the study is graded by a local model, not the paper's GPT-4; None
    when every grader is an API model. Notebooks and the report show it at the top.

    >>> judge_banner(["smollm2-yes-no"]).splitlines()[0]
    '> **Not GPT-4.** This study is graded by `smollm2-yes-no`, a small local model asked yes/no'
    """
    labels = cfg_or_labels if isinstance(cfg_or_labels, (list, tuple)) else local_judges(cfg_or_labels)
    if not labels:
        return None
    return (f"> **Not GPT-4.** This study is graded by {', '.join(f'`{x}`' for x in labels)}, a small local model asked yes/no\n"
            "> per rubric criterion (see the method column). Its grades show that the pipeline runs end to end and\n"
            "> how the numbers are computed; they are not the paper's GPT-4 grades, and a difference between\n"
            "> students here says what this judge prefers, not whether a model composes skills.")


def count_frame(per_k: dict) -> pd.DataFrame:
    """The data card's per-k counts as a table with integer counts and the keep rate in percent."""
    df = pd.DataFrame(per_k).T.rename_axis("k")
    for c in df.columns:
        if c == "keep_rate":
            df[c] = df[c].map(lambda v: "" if v is None or pd.isna(v) else f"{float(v):.1%}")
        elif pd.api.types.is_numeric_dtype(df[c]) or df[c].map(lambda v: isinstance(v, (int, float))).all():
            df[c] = df[c].astype("Int64")
    return df


def texts_view(df: pd.DataFrame):
    """A records table for a notebook with answers shown as written (line breaks kept)."""
    if df.empty or "answer" not in df.columns:
        return df
    return (df.style.hide(axis="index")
            .set_properties(subset=["answer"], **{"white-space": "pre-wrap", "text-align": "left",
                                                  "min-width": "28em"}))
