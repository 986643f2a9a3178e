"""The metric tables of an evaluation, from the points stored in eval/records.jsonl.

    skillmix metrics configs/demo.yaml

eval/tables/:
- metrics.csv: one row per student x setting x k x grader: the three metrics of
  docs/protocol.md §5 (`metrics.skillmix_metrics`: vote over rounds, max over generations, mean
  over combinations, with SEM and a 95% interval: Wilson's where every combination scores 0 or
  1, else a bootstrap) and the counts; `grader_model` is the grader's model spec, so that a
  table can say who graded (`numbers.judge_phrase`). `n_parse_failures` counts
  gradings whose reply could not be read (status parse_failed); failed calls are in
  parse_failures.csv. `n_train_overlap` counts the row's combinations that are also training
  combinations (same skill set and topic; it must be 0) and `n_excluded_draws` how many draws
  the exclusion of training combinations rejected (docs/protocol.md §2).
- per_category.csv: per student x setting x k x grader x skill category, the fraction of voted
  skill points earned (all generations, not the max).
- agreement.csv: per pair of graders x criterion, Cohen's kappa of their voted points on the
  same texts, and (criterion "full_marks") P(full marks by b | full marks by a) and the reverse,
  as the paper's Table 6; per student x setting x k and pooled ("all").
- parse_failures.csv: per student x setting x k x grader, gradings ok / parse_failed / error /
  missing.
Only current records count (`current.current_records`, the reader the report, the partition
gain and the human sample use: planned by the config and made the way it makes them now) and
only current gradings (`scoring.current_gradings`). Before the tables are computed every
current record is scored again (`scoring.rescore`) and the records whose stored points changed
are rewritten, so changing `scoring` and re-running `skillmix metrics` needs no model call,
and the tables, the report and the notebooks (which all read the stored `derived` points)
agree.
"""
from __future__ import annotations

import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from skillmix_utils.core.config import StudyConfig, write_resolved_config
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.grader_methods import rounds_of
from skillmix_utils.core.metrics import grader_agreement, skillmix_metrics
from skillmix_utils.core.records import RecordStore, TextRecord
from skillmix_utils.stages.current import (
    IMPORTED,
    current_records,
    eval_planned_ids,
    retire,
)
from skillmix_utils.stages.draws import overlap_keys
from skillmix_utils.stages.scoring import current_gradings, rescore, study_graders
from skillmix_utils.stages.train.card import write_card
from skillmix_utils.stages.train.run import run_dir

METRIC_COLUMNS = [f"{m}{s}" for m in ("ratio_full_marks", "ratio_all_skills", "skills_fraction")
                  for s in ("", "_sem", "_ci_low", "_ci_high")]
COLUMNS = (["study", "student", "base_model", "adapter", "train_data", "setting", "k", "grader",
            "grader_method", "grader_model",
            "n_combinations"] + METRIC_COLUMNS
           + ["n_excluded_generations", "n_excluded_combinations", "n_parse_failures",
              "n_train_overlap", "n_excluded_draws"])


def grader_labels(cfg: StudyConfig, records: list[TextRecord]) -> list[str]:
    """The config's graders (evaluation first) that have counted points on some record."""
    present = {label for r in records for label in r.derived.round_points}
    return [g.label for g in study_graders(cfg, "eval") if g.label in present]


def _groups(cfg, records):
    order = {s.name: i for i, s in enumerate(cfg.evaluation.students)} if cfg.evaluation else {}
    settings = {s: i for i, s in enumerate(["train", "held_out", "all", "custom"])}
    groups = defaultdict(list)
    for r in records:
        groups[(r.student or r.model, r.combination.setting, r.combination.k)].append(r)
    return dict(sorted(groups.items(), key=lambda kv: (
        order.get(kv[0][0], len(order)), kv[0][0], settings.get(kv[0][1], 9), kv[0][1], kv[0][2])))


def round_points(rec: TextRecord, label: str, cfg: StudyConfig | None = None) -> dict[int, list[float]]:
    """{round: the k + 3 corrected points (NaN = unreadable)} of one grader on one record, as
    stored by `scoring.score` (`rec.derived.round_points`)."""
    if rec.status != "ok" or rec.answer is None:
        return {}
    return {int(rnd): [math.nan if p is None else p for p in pts]
            for rnd, pts in rec.derived.round_points.get(label, {}).items()}


def points_array(recs: list[TextRecord], label: str, cfg: StudyConfig | None, k: int) -> np.ndarray:
    """(combinations, generations, rounds, k + 3) with NaN for what is missing or failed."""
    combos = sorted({r.combination.index for r in recs})
    gens = max(r.generation_round for r in recs) + 1
    per = {r.id: round_points(r, label) for r in recs}
    rounds = max([max(p) + 1 for p in per.values() if p] + [1])
    a = np.full((len(combos), gens, rounds, k + 3), np.nan)
    ci = {c: i for i, c in enumerate(combos)}
    for r in recs:
        for rnd, pts in per[r.id].items():
            a[ci[r.combination.index], r.generation_round, rnd] = pts
    return a


def voted_by_text(recs, label, cfg=None) -> dict[str, np.ndarray]:
    """record id -> stored voted points of one grader (NaN where no counted round)."""
    out = {}
    for r in recs:
        v = r.derived.voted_points.get(label) if r.status == "ok" else None
        out[r.id] = (np.array([math.nan if p is None else p for p in v], dtype=float) if v
                     else np.full(r.combination.k + 3, np.nan))
    return out


def _train_data(cfg: StudyConfig, student: str) -> str:
    """The training data of a student tuned by this study ("D(1,2,3)" or a sub-sample name), ""
    for a base model or an adapter from elsewhere (its data is not known here)."""
    spec = next((s for s in (cfg.evaluation.students if cfg.evaluation else [])
                 if s.name == student), None)
    if spec is None or not (spec.adapter or "").startswith("@train") or cfg.train is None:
        return ""
    if cfg.train.subsample:
        return cfg.train.subsample
    return "D(" + ",".join(str(k) for k in sorted(set(cfg.train.data_mix))) + ")"


def _method(recs, label) -> str:
    return next((g.method for r in recs for g in r.gradings if g.grader == label), "")


def _write(path: Path, rows: list[dict], columns: list[str]) -> Path:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows, columns=columns)
    tmp = path.with_suffix(".csv.tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def _category_of(catalog, rec: TextRecord, i: int) -> str:
    if len(rec.combination.categories) == rec.combination.k:
        return rec.combination.categories[i]
    try:
        return catalog.skill(rec.combination.skills[i]).category
    except Exception:
        return "unknown"


def check_evaluated(cfg: StudyConfig) -> None:
    """Refuse to tabulate a study whose evaluation has no readable record, naming what to run,
    before anything is written (empty tables and a report of nothing read as a result)."""
    records = cfg.out / "eval" / "records.jsonl"
    if not records.exists() or not records.stat().st_size:
        raise SkillmixError("no evaluation records yet: run notebooks 02-04 first "
                            "(`skillmix run CONFIG --stages 02 03 04`), or `skillmix evaluate "
                            "CONFIG` for the evaluation alone", file=str(records))
    if not RecordStore(records).load(warn=False):    # every line damaged or of another version
        raise SkillmixError("no readable evaluation record (every line is damaged or of another "
                            "schema version); re-run notebook 04 (`skillmix evaluate CONFIG`) to "
                            "make them again", file=str(records))


def write_metric_tables(cfg: StudyConfig) -> dict[str, Path]:
    """Recompute eval/tables/*.csv from eval/records.jsonl; returns the paths written.

    Example: ``write_metric_tables(load_study_config("configs/demo.yaml"))["metrics"]``.
    """


    folder = cfg.out / "eval" / "tables"
    src = cfg.out / "eval" / "records.jsonl"
    catalog = cfg.catalog.load()
    # Records read by `skillmix import-reference`: no config draws them, so all of them count
    # (current_records), with every configured grader; they are scored again with the config's
    # scoring, every grading counting (`skillmix metrics` after an edit of `scoring:`).
    imported = src.exists() and (cfg.out / "eval" / IMPORTED).exists()
    grading_catalog = None if imported else catalog
    graders = study_graders(cfg, "eval") if src.exists() and (
        imported or cfg.evaluation is not None) else []
    if src.exists() and cfg.evaluation is not None and not imported:
        # The folder's config.yaml says which config made these tables (the report reads the
        # same records through it); records it no longer plans leave the store (to
        # records.superseded.jsonl).
        write_resolved_config(cfg)
        retire(RecordStore(src), eval_planned_ids(cfg, catalog))
    notes: list[str] = []
    records = current_records(cfg, "eval", catalog, notes)
    if records and not imported:
        # Only texts made the way the config makes them now; their stored points are derived
        # again with the current scoring and graders, and rewritten where they changed.
        RecordStore(src).append(rescore(records, cfg.scoring, graders, catalog))
    elif records:
        RecordStore(src).append(rescore(records, cfg.scoring))
    for note in notes:
        print(f"skillmix: {note} (its texts are left out of the tables)", file=sys.stderr)
    train = overlap_keys(cfg, catalog)
    labels = grader_labels(cfg, records)
    methods = {lb: _method(records, lb) for lb in labels}
    specs = {g.label: g.spec for g in graders}

    metric_rows, cat_rows, fail_rows, agree_rows = [], [], [], []
    pooled: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for (student, setting, k), recs in _groups(cfg, records).items():
        head = {"study": cfg.name, "student": student, "setting": setting, "k": k}
        votes = {}
        for label in labels:
            if not any(label in r.derived.round_points for r in recs):
                continue
            method = _method(recs, label)
            m = skillmix_metrics(points_array(recs, label, cfg, k), k, seed=cfg.evaluation.seed
                                 if cfg.evaluation else 0)
            statuses = [g.status for r in recs for _, g in current_gradings(r, graders, grading_catalog)
                        if g.grader == label]
            combos = {r.combination.index: r.combination for r in recs}.values()
            metric_rows.append({**head, "base_model": recs[0].model, "adapter": recs[0].adapter or "",
                                "train_data": _train_data(cfg, student),
                                "grader": label, "grader_method": method,
                                "grader_model": specs.get(label, ""),
                                **{c: m[c] for c in ["n_combinations"] + METRIC_COLUMNS
                                   + ["n_excluded_generations", "n_excluded_combinations"]},
                                "n_parse_failures": statuses.count("parse_failed"),
                                "n_train_overlap": sum((frozenset(c.skills), c.topic) in train
                                                       for c in combos),
                                "n_excluded_draws": sum(c.excluded_draws for c in combos)})
            expected = {len(rounds_of(g)) for g in graders if g.label == label}
            n_expected = (max(expected) if expected else 1) * sum(r.status == "ok" for r in recs)
            fail_rows.append({**head, "grader": label, "grader_method": method,
                              "n_texts": len(recs), "n_gradings": len(statuses),
                              "n_ok": statuses.count("ok"),
                              "n_parse_failed": statuses.count("parse_failed"),
                              "n_error": statuses.count("error"),
                              "n_missing": max(0, n_expected - len(statuses))})
            votes[label] = voted_by_text(recs, label, cfg)
            earned, total = defaultdict(float), defaultdict(int)
            for r in recs:
                v = votes[label][r.id]
                for i in range(k):
                    if not np.isnan(v[i]):
                        cat = _category_of(catalog, r, i)
                        earned[cat] += float(v[i])
                        total[cat] += 1
            for cat in sorted(total):
                cat_rows.append({**head, "grader": label, "grader_method": method,
                                 "category": cat, "n_skill_points": total[cat],
                                 "points_earned": earned[cat],
                                 "fraction_earned": earned[cat] / total[cat]})
        present = [lb for lb in labels if lb in votes]
        for i, a in enumerate(present):
            for b in present[i + 1:]:
                ids = [r.id for r in recs]
                pa = np.array([votes[a][x] for x in ids])
                pb = np.array([votes[b][x] for x in ids])
                agree_rows.extend(_agreement_rows(head, a, b, grader_agreement(pa, pb, k), k, methods))
                pooled[(k, a, b)]["a"].append(pa)
                pooled[(k, a, b)]["b"].append(pb)
    for (k, a, b), d in sorted(pooled.items()):
        head = {"study": cfg.name, "student": "all", "setting": "all", "k": k}
        agree_rows.extend(_agreement_rows(head, a, b, grader_agreement(
            np.concatenate(d["a"]), np.concatenate(d["b"]), k), k, methods))

    paths = {
        "metrics": _write(folder / "metrics.csv", metric_rows, COLUMNS),
        "per_category": _write(folder / "per_category.csv", cat_rows, [
            "study", "student", "setting", "k", "grader", "grader_method", "category",
            "n_skill_points", "points_earned", "fraction_earned"]),
        "agreement": _write(folder / "agreement.csv", agree_rows, AGREEMENT_COLUMNS),
        "parse_failures": _write(folder / "parse_failures.csv", fail_rows, [
            "study", "student", "setting", "k", "grader", "grader_method", "n_texts",
            "n_gradings", "n_ok", "n_parse_failed", "n_error", "n_missing"]),
    }
    if cfg.train is not None and cfg.train.enabled and metric_rows:
        # The trained run's model card carries the study's metrics table (train/outputs.py).

        if write_card(cfg, run_dir(cfg), metric_rows) is not None:
            paths["model_card"] = run_dir(cfg) / "model_card.md"
    return paths


AGREEMENT_COLUMNS = ["study", "student", "setting", "k", "grader_a", "grader_b", "grader_a_method",
                     "grader_b_method", "criterion",
                     "kappa", "n_texts", "p_full_b_given_full_a", "p_full_a_given_full_b",
                     "full_marks_a", "full_marks_b"]


def _agreement_rows(head: dict, a: str, b: str, g: dict, k: int, methods: dict) -> list[dict]:
    crits = [f"skill_{i + 1}" for i in range(k)] + ["skills", "topic", "sense", "length",
                                                    "full_marks"]
    rows = []
    for c in crits:
        row = {**head, "grader_a": a, "grader_b": b, "grader_a_method": methods.get(a, ""),
               "grader_b_method": methods.get(b, ""), "criterion": c, "kappa": g[f"kappa_{c}"],
               "n_texts": g["n_texts"]}
        if c == "full_marks":
            row.update({x: g[x] for x in ("p_full_b_given_full_a", "p_full_a_given_full_b",
                                          "full_marks_a", "full_marks_b")})
        rows.append(row)
    return rows
