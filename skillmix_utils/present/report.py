"""The self-contained HTML report of a study: `outputs/<study>/report.html`.

    from skillmix_utils.present.report import build_report
    build_report("outputs/demo")          # -> outputs/demo/report.html

One file that opens from disk with no network: the resolved config, costs (from the records),
the data card and training summaries as text, the paired comparison of base and tuned students
on the same combinations (`comparison.py`), the metric and paper tables with the study's terms
defined beside them, the figures (PNG as base64) captioned in words, and a sample browser over
the evaluation (and data-generation) records, filtered in the page by stage, student, setting,
k and skill, showing each text with why each reply ended (a reply cut off by max_tokens is
flagged), every grader's reply and points, and (for the first TRANSCRIPT_LIMIT texts of a
stage) its two-turn transcript and each grader's prompt.
The template is `data/templates/report.html.j2`; its CSS and JavaScript are inline.

Every part made from records (sample browser, criterion and skill tables, failure gallery,
costs) shows the records the metric tables count: `stages.current.current_records` for the
config the folder holds (config.yaml, written by the stages and `skillmix metrics`).
"""
from __future__ import annotations

import base64
import datetime as _dt
import json
import sys
from importlib import resources
from pathlib import Path

import pandas as pd

from skillmix_utils.core.config import load_study_config
from skillmix_utils.core.provenance import git_commit
from skillmix_utils.core.records import TextRecord, truncated
from skillmix_utils.present import paper_tables as pt
from skillmix_utils.present.beyond_report import beyond_sections
from skillmix_utils.present.comparison import paired_comparison
from skillmix_utils.present.html import html_table, markdown_html, summary_rows
from skillmix_utils.present.views import (
    METRIC_DEFINITIONS,
    SENTENCE_NOTE,
    STUDY_DEFINITIONS,
    figure_caption,
    judge_banner,
)
from skillmix_utils.stages.current import STORES, current_records
from skillmix_utils.stages.export import card_markdown

SAMPLE_LIMIT = 2000   # per stage; a bigger study shows the first ones (the JSONL has them all)
# Texts per stage whose transcript and grader prompts travel in the page: each adds some 10 kB
# (the turn-1 prompt, a grader prompt per round), so a paper-sized study stays a few MB.
TRANSCRIPT_LIMIT = 500


def _criteria(rec: TextRecord) -> list[str]:
    c = rec.combination
    return [*c.skills, f"topic: {c.topic}", "makes sense", "length"]


def vote_sources(rec: TextRecord, grader: str) -> list[str]:
    """Where each voted point of `grader` comes from, in rubric order (skills, topic, sense,
    length): "grader", or "rule: <name>" where scoring let a rule set it (the rules stored by
    `scoring.score`, e.g. "rule: length", and "rule: names the skill" only when that rule is
    on); "unknown" for a record scored before the rules were stored (`skillmix metrics`
    scores it again). The rules act on every readable grading; under `unreadable: zero` an
    unreadable round still counts 0 for every point."""
    rules = rec.derived.point_rules
    if rules is None:
        return ["unknown"] * (rec.combination.k + 3)
    return [f"rule: {r}" if r else "grader" for r in rules]


def _score(points) -> float | None:
    if not points or any(p is None for p in points):
        return None
    return float(sum(points)) / len(points)


def _disagreement(rec: TextRecord) -> bool:
    """Graders (or a grader's rounds) that voted differently on some point of this text."""
    votes = [v for v in rec.derived.voted_points.values() if v]
    if len(votes) > 1 and any(len(set(col)) > 1 for col in zip(*votes)):
        return True
    by: dict = {}
    for g in rec.gradings:
        if g.status == "ok" and g.points:
            by.setdefault(g.grader, []).append(tuple(g.points))
    return any(len(set(rounds)) > 1 for rounds in by.values())


def _parse_status(rec: TextRecord) -> str:
    statuses = {g.status for g in rec.gradings}
    if not rec.gradings:
        return "not graded" if rec.status == "ok" else "no text"
    for s in ("error", "parse_failed"):
        if s in statuses:
            return s
    return "ok"


def sample_rows(records, stage: str, limit: int = SAMPLE_LIMIT, grader: str | None = None,
                transcripts: int = TRANSCRIPT_LIMIT) -> list[dict]:
    """Records as small dicts for the page's sample browser (text, combination, the two-turn
    transcript and why each reply ended, gradings with their prompts and replies, the score in
    `grader`'s vote (default: each record's first grader), parse status, grader disagreement,
    where each voted point came from); transcripts and grader prompts for the first
    `transcripts` records only."""
    out = []
    for i, rec in enumerate(list(records)[:limit]):
        full = i < transcripts
        c = rec.combination
        first = (rec.derived.voted_points.get(grader) if grader
                 else next(iter(rec.derived.voted_points.values()), None))
        out.append({
            "score": _score(first), "full": None if _score(first) is None else _score(first) == 1.0,
            "parse": _parse_status(rec), "disagree": _disagreement(rec),
            "sources": {g: vote_sources(rec, g) for g in rec.derived.voted_points},
            "id": rec.id, "stage": stage, "student": rec.student or rec.model, "setting": c.setting,
            "k": c.k, "skills": list(c.skills), "categories": list(c.categories), "topic": c.topic,
            "round": rec.generation_round, "answer": rec.answer, "status": rec.status, "error": rec.error,
            "conversation": [{"role": m.get("role"), "content": m.get("content")}
                             for m in rec.conversation] if full else None,
            "finish": list(rec.finish_reasons), "truncated": truncated(rec),
            "rule": rec.extraction_rule, "kept": rec.kept, "criteria": _criteria(rec),
            "sentences": rec.derived.sentence_count, "length_point": rec.derived.length_point,
            "explicit": list(rec.derived.explicit_names), "voted": rec.derived.voted_points,
            "gradings": [{"grader": g.grader, "method": g.method, "round": g.round, "status": g.status,
                          "points": g.points, "total": g.stated_total, "reply": g.raw_reply,
                          "prompt": g.prompt if full else None, "finish": g.finish_reason,
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


def criterion_table(records, grader: str | None = None) -> pd.DataFrame:
    """Per student, setting and k: the share of texts that earned each kind of point (skills,
    topic, makes sense, length) in `grader`'s vote (default: the first), with n, and which
    criterion fails most."""
    rows = []
    for rec in records:
        votes = rec.derived.voted_points
        g = grader or next(iter(votes), None)
        v = votes.get(g) if g else None
        if not v or any(p is None for p in v):
            continue
        k = rec.combination.k
        rows.append({"student": rec.student or rec.model, "setting": rec.combination.setting, "k": k,
                     "skills": sum(v[:k]) / k, "topic": v[k], "makes sense": v[k + 1], "length": v[k + 2]})
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    crit = ["skills", "topic", "makes sense", "length"]
    out = df.groupby(["student", "setting", "k"], sort=False)[crit].mean()
    out["n"] = df.groupby(["student", "setting", "k"], sort=False).size()
    out["fails most"] = out[crit].idxmin(axis=1)
    return out.reset_index()


def skill_table(records, grader: str | None = None, min_n: int = 1) -> pd.DataFrame:
    """Per skill (with its category and split): how often its point was earned in `grader`'s vote,
    over how many texts, per student; lowest first."""
    rows = []
    for rec in records:
        votes = rec.derived.voted_points
        g = grader or next(iter(votes), None)
        v = votes.get(g) if g else None
        if not v:
            continue
        cats = list(rec.combination.categories) or [""] * rec.combination.k
        for i, skill in enumerate(rec.combination.skills):
            if v[i] is not None:
                rows.append({"skill": skill, "category": cats[i] if i < len(cats) else "",
                             "student": rec.student or rec.model, "earned": v[i]})
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    out = df.groupby(["skill", "category", "student"])["earned"].agg(["mean", "size"]).reset_index()
    out = out.rename(columns={"mean": "point earned", "size": "n"})
    return out[out["n"] >= min_n].sort_values(["point earned", "n"], ascending=[True, False])


def failure_gallery(records, per_cell: int = 2) -> list[dict]:
    """A few texts that missed full marks per student and k, with the criteria they failed and
    whether a grader or a rule took each point."""
    seen: dict = {}
    out = []
    for rec in records:
        v = next(iter(rec.derived.voted_points.values()), None)
        g = next(iter(rec.derived.voted_points), None)
        if not v or any(p is None for p in v) or all(p == 1 for p in v):
            continue
        key = (rec.student or rec.model, rec.combination.k)
        if seen.get(key, 0) >= per_cell:
            continue
        seen[key] = seen.get(key, 0) + 1
        crit, src = _criteria(rec), vote_sources(rec, g)
        out.append({"student": key[0], "k": key[1], "setting": rec.combination.setting,
                    "topic": rec.combination.topic, "answer": rec.answer or "",
                    "failed": [f"{c} ({s})" for c, s, p in zip(crit, src, v) if p != 1],
                    "sentences": rec.derived.sentence_count})
    return sorted(out, key=lambda r: (r["student"], r["k"]))


def run_metadata(out_dir: Path, stores: dict) -> dict:
    """What made this study: package versions, git commit, wall time per stage (from the done
    markers of `skillmix run`), requests and cost per stage (from the records)."""
    from importlib import metadata as md

    versions = {}
    for pkg in ("skillmix", "torch", "transformers", "peft", "accelerate", "bitsandbytes", "datasets",
                "openai", "anthropic", "papermill", "vllm"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    try:
        commit = git_commit()
    except Exception:  # noqa: BLE001 - metadata is best effort (torch may be missing)
        commit = "unknown"
    stages = []
    for marker in sorted((out_dir / ".runner").glob("*.done.json")):
        data = _read_json(marker) or {}
        stages.append({"stage": data.get("notebook", marker.stem), "wall time (s)": data.get("seconds"),
                       "finished": data.get("finished")})
    per_stage = []
    for stage, recs in stores.items():
        calls = sum(1 + len(r.gradings) for r in recs)
        cached = sum(int(r.usage.cached) + sum(int(g.usage.cached) for g in r.gradings) for r in recs)
        usd = sum(r.usage.cost_usd + sum(g.usage.cost_usd for g in r.gradings) for r in recs)
        per_stage.append({"stage": stage, "texts": len(recs), "requests": calls, "cached": cached,
                          "cost (USD)": round(usd, 4)})
    return {"versions": versions, "commit": commit, "stages": stages, "requests": per_stage}


def _json_for_script(obj) -> str:
    # Inside <script type="application/json"> only "</" can end the element early.
    return json.dumps(obj, ensure_ascii=False).replace("</", "<\\/")


def _figures(folder: Path) -> list[dict]:
    return [{"name": p.stem, "caption": figure_caption(p.stem),
             "data": base64.b64encode(p.read_bytes()).decode("ascii")}
            for p in sorted(folder.glob("*.png"))] if folder.is_dir() else []


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def data_card_html(out_dir) -> str:
    """The data card as readable HTML: data/data_card.md (or the card's JSON rendered the same
    way), else its fields as a two-column table; "" without a card."""
    data = Path(out_dir) / "data"
    if (data / "data_card.md").exists():
        return markdown_html((data / "data_card.md").read_text())
    card = _read_json(data / "data_card.json")
    if not card:
        return ""
    try:
        return markdown_html(card_markdown(card))
    except (KeyError, TypeError):     # a card from another version: its fields as they are
        return html_table(pd.DataFrame(summary_rows(card), columns=["what", "value"]), "data summary")


def report_config(out_dir):
    """The study config in `out_dir`'s config.yaml, read as if the folder were its output_dir
    (so a moved folder still reads its own records); None without one."""
    out_dir = Path(out_dir)
    if not (out_dir / "config.yaml").exists():
        return None
    return load_study_config(out_dir / "config.yaml", overrides={"output_dir": str(out_dir)})


def report_records(out_dir) -> dict[str, list[TextRecord]]:
    """{stage: its current records} of the study in `out_dir`, judged by the config.yaml there
    (`report_config`); {} without a config. Why a student's texts are left out goes to stderr,
    as for the tables."""
    out_dir = Path(out_dir)
    cfg = report_config(out_dir)
    if cfg is None:
        return {}
    notes: list[str] = []
    stages = [st for st in STORES if (out_dir / STORES[st] / "records.jsonl").exists()]
    catalog = cfg.catalog.load() if stages else None
    stores = {stage: current_records(cfg, stage, catalog, notes) for stage in stages}
    for note in dict.fromkeys(notes):
        print(f"skillmix: {note} (its texts are left out of the report)", file=sys.stderr)
    return stores


def build_report(out_dir, out_path=None, grader: str | None = None,
                 sample_limit: int = SAMPLE_LIMIT) -> Path:
    """Write the study's report.html from what `out_dir` holds and return its path.

    Missing parts (no training, no second grader, no figures yet) are left out, not errors.
    The records shown are those the metric tables count (`report_records`).
    """
    from jinja2 import Environment

    out_dir = Path(out_dir)
    out_path = Path(out_path) if out_path else out_dir / "report.html"
    tables_dir = out_dir / "eval" / "tables"
    stores = report_records(out_dir)
    metrics = pt.read_table(tables_dir / "metrics.csv")
    g = pt.main_grader(metrics, grader)
    sections = []
    if not metrics.empty:
        sections.append(("Ratio of Full Marks (Tables 2-3)", html_table(pt.metric_table(metrics, "ratio_full_marks", g, with_n=True), "data metrics")))
        sections.append(("Skills Fraction (Tables 2-3)", html_table(pt.metric_table(metrics, "skills_fraction", g, with_n=True), "data metrics")))
        sections.append(("Ratio of All Skills", html_table(pt.metric_table(metrics, "ratio_all_skills", g, with_n=True), "data metrics")))
        for title, df in (("Data efficiency (Table 4)", pt.data_efficiency_table(metrics, grader=g)),
                          ("Graders compared (Table 5)", pt.grader_table(metrics)),
                          ("Grader agreement (Table 6)", pt.agreement_table(tables_dir / "agreement.csv")),
                          ("The paper's quoted numbers beside ours", pt.paper_comparison_table(metrics, g)),
                          ("Parse failures", pt.read_table(tables_dir / "parse_failures.csv"))):
            if not df.empty:
                sections.append((title, html_table(df, "data metrics")))
        sections.append(("metrics.csv (all columns)", html_table(metrics, "data metrics wide")))
    train = []
    for summary in sorted(out_dir.glob("train/*/train_summary.json")):
        data = _read_json(summary)
        if data is not None:
            rows = pd.DataFrame(summary_rows(data), columns=["what", "value"])
            train.append({"run": summary.parent.name, "table": html_table(rows, "data summary")})
    samples = [row for stage, recs in stores.items()
               for row in sample_rows(recs, stage, sample_limit, grader=g if stage == "eval" else None)]
    eval_recs = stores.get("eval", [])
    analysis = []
    for title, df in (("Which criterion fails (share of texts earning each point)", criterion_table(eval_recs, g)),
                      ("Per skill (share of texts earning the skill's point, lowest first)", skill_table(eval_recs, g))):
        if not df.empty:
            analysis.append((title, html_table(df.head(60), "data analysis")))
    meta = run_metadata(out_dir, stores)
    n_values = sorted({int(x) for x in metrics.get("n_combinations", pd.Series(dtype=float)).dropna()}) \
        if not metrics.empty else []
    labels = sorted({gr.grader for recs in stores.values() for r in recs for gr in r.gradings
                     if gr.method == "yes_no_logprob"})
    config_text = (out_dir / "config.yaml").read_text() if (out_dir / "config.yaml").exists() else ""
    cfg = report_config(out_dir) if eval_recs else None
    paired = paired_comparison(cfg, eval_recs, g) if cfg is not None else []
    terms = ["k", *(f"{p['setting']} (setting)" for p in paired), "rubric", "base / tuned"]
    paired_terms = {t: STUDY_DEFINITIONS[t] for t in dict.fromkeys(terms) if t in STUDY_DEFINITIONS}
    from jinja2 import FileSystemLoader


    templates = resources.files("skillmix_utils").joinpath("data", "templates")
    template = templates.joinpath("report.html.j2").read_text()
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True,
                      loader=FileSystemLoader(str(templates)))   # for {% include %}
    try:
        import yaml

        study = (yaml.safe_load(config_text) or {}).get("name") or out_dir.name
    except Exception:  # noqa: BLE001 - the title is cosmetic
        study = out_dir.name
    html = env.from_string(template).render(
        study=study, generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        grader=g, config_text=config_text, costs=html_table(cost_table(stores), "data costs"),
        data_card=data_card_html(out_dir), paired=paired, study_terms=STUDY_DEFINITIONS,
        paired_terms=paired_terms,
        sentence_note=SENTENCE_NOTE,
        n_truncated=sum(s["truncated"] for s in samples),
        train=train, sections=sections, figures=_figures(out_dir / "figures"),
        samples_json=_json_for_script(samples), n_samples=len(samples),
        banner=(judge_banner(labels) or "").replace("> ", "").replace("**", "").replace("`", "").replace("\n", " "), definitions=METRIC_DEFINITIONS, analysis=analysis,
        gallery=failure_gallery(eval_recs), meta=meta,
        n_note=("n = " + ", ".join(map(str, n_values)) + " combinations per point") if n_values else "",
        versions=html_table(pd.DataFrame([meta["versions"]])),
        stage_times=html_table(pd.DataFrame(meta["stages"])),
        requests=html_table(pd.DataFrame(meta["requests"])),
        n_records={stage: len(recs) for stage, recs in stores.items()},
        beyond=beyond_sections(out_dir))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out_path)
    return out_path
