"""Grading: every grader x round on every text, the raw reply kept (PROTOCOL §4).

    skillmix grade configs/demo.yaml --records outputs/demo/eval/records.jsonl --grader claude

A grading that fails is recorded, not scored: `status="error"` (the call failed) or
`"parse_failed"` (the reply could not be mapped onto the k + 3 criteria). Both count as missing
rounds in the vote and are asked again on the next run; the llm cache answers a repeated request
for free, so a re-run after a parser fix re-reads the stored reply at no cost. Grading round r
sends seed `round_seed(grader, r)`, so rounds are independent calls, not one reply copied.
Graders are keyed in records and tables by `GraderSpec.label` (its `name`, else its spec).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..config import GraderSpec, StudyConfig
from ..errors import SkillmixError
from ..records import Grading, RecordStore, TextRecord, Usage
from . import local_judge
from .context import BudgetExhausted, StageRun, round_seed, write_resolved_config
from .scoring import derive


def grader_rounds(grader: GraderSpec) -> list[int]:
    """The rounds a grader is asked: `rounds` of them, one for the deterministic local judge."""
    return [0] if grader.method == local_judge.METHOD else list(range(grader.rounds))


def _done(rec: TextRecord, label: str, round_: int) -> bool:
    return any(g.grader == label and g.round == round_ and g.status == "ok" for g in rec.gradings)


def _put(rec: TextRecord, grading: Grading) -> None:
    rec.gradings = [g for g in rec.gradings
                    if not (g.grader == grading.grader and g.round == grading.round)] + [grading]


def pending_gradings(records, grader: GraderSpec) -> list[tuple[TextRecord, int]]:
    """(record, round) pairs this grader still owes: texts that exist and lack an ok grading."""
    return [(rec, r) for r in grader_rounds(grader) for rec in records
            if rec.status == "ok" and rec.answer is not None and not _done(rec, grader.label, r)]


def _skills(catalog, rec: TextRecord):
    try:
        return [catalog.skill(s) for s in rec.combination.skills]
    except Exception as exc:
        raise SkillmixError(f"record {rec.id}: skill not in the study's catalog ({exc})",
                            field="catalog.skills") from None


def _chat_gradings(run: StageRun, grader: GraderSpec, backend, catalog, pairs) -> list[Grading]:
    from ..grading import parse_grade, rubric_items
    from ..prompts import grading_prompt

    out: list[Grading | None] = [None] * len(pairs)
    by_round: dict[int, list[int]] = {}
    for i, (_, r) in enumerate(pairs):
        by_round.setdefault(r, []).append(i)
    results_all = []
    for r, idx in sorted(by_round.items()):
        prompts_ = [grading_prompt(_skills(catalog, pairs[i][0]), pairs[i][0].combination.topic,
                                   pairs[i][0].answer, variant=grader.method) for i in idx]
        results = backend.chat([[{"role": "user", "content": p}] for p in prompts_],
                               temperature=grader.temperature, max_tokens=grader.max_tokens,
                               n=1, seed=round_seed(grader, r))
        results_all.extend(results)
        for i, p, res in zip(idx, prompts_, results):
            rec = pairs[i][0]
            g = Grading(grader=grader.label, method=grader.method, round=r, prompt=p,
                        raw_reply=res.text,
                        usage=Usage(input_tokens=res.input_tokens or 0,
                                    output_tokens=res.output_tokens or 0,
                                    cost_usd=res.cost_usd or 0.0, cached=bool(res.cached)))
            if not res.ok:
                g.status, g.error = "error", res.error
            else:
                parsed = parse_grade(res.text or "",
                                     rubric_items(list(rec.combination.skills), rec.combination.topic))
                g.points = None if parsed.points is None else list(parsed.points)
                g.stated_total = parsed.stated_total
                g.status = parsed.status if parsed.status in ("ok", "parse_failed") else "parse_failed"
            out[i] = g
    # Spending is counted here; a spent budget is raised by the caller once the chunk is saved.
    run.spent_usd += sum((r.cost_usd or 0.0) for r in results_all if not r.cached)
    return out  # type: ignore[return-value]


def grade_records(run: StageRun, records: list[TextRecord], graders: list[GraderSpec], catalog,
                  store: RecordStore, *, chunk_size: int | None = None,
                  finish: Callable[[TextRecord], None] | None = None) -> int:
    """Grade what is still owed by `graders` on `records` (updated in place and re-appended).

    After each chunk the derived points are recomputed (`scoring.derive`), `finish(record)` runs
    (data generation sets `kept` there) and the records are appended. Returns the number of
    gradings made. Raises `BudgetExhausted` after saving the chunk that spent the budget.
    """
    made = 0
    chunk_size = chunk_size or run.chunk_size
    for grader in graders:
        pairs = pending_gradings(records, grader)
        if not pairs:
            continue
        backend = run.backend(grader)
        if grader.method == local_judge.METHOD:
            local_judge.check_backend(backend, grader.spec)
        run.say(f"grading {len(pairs)} text-rounds with {grader.label} ({grader.method})")
        phase = run.progress.phase(f"grader {grader.label}: grade", len(pairs), unit="gradings")
        for start in range(0, len(pairs), chunk_size):
            chunk = pairs[start:start + chunk_size]
            exhausted = None
            if grader.method == local_judge.METHOD:
                gradings = local_judge.judge(backend, grader.label, [
                    (_skills(catalog, rec), rec.combination.topic, rec.answer) for rec, _ in chunk])
            else:
                gradings = _chat_gradings(run, grader, backend, catalog, chunk)
            touched = {}
            for (rec, _), g in zip(chunk, gradings):
                if g.error == "budget_exceeded":
                    exhausted = g.error
                _put(rec, g)
                touched[rec.id] = rec
            for rec in touched.values():
                rec.derived = derive(rec, run.cfg.scoring)
                if finish:
                    finish(rec)
            store.append(list(touched.values()))
            run.progress.advance(len(chunk), failed=sum(g.status != "ok" for g in gradings),
                                 usd=sum(g.usage.cost_usd or 0.0 for g in gradings if not g.usage.cached),
                                 index=phase)
            made += len(chunk)
            if exhausted:
                raise BudgetExhausted("budget spent while grading")
    return made


def _graders_for(cfg: StudyConfig, stage: str, names: list[str] | None) -> list[GraderSpec]:
    own = (cfg.evaluation.graders if stage == "eval" and cfg.evaluation
           else cfg.data.graders if stage == "datagen" and cfg.data else [])
    if not names:
        return list(own)
    every = own + [g for sec in (cfg.data, cfg.evaluation) if sec for g in sec.graders]
    out = []
    for name in names:
        match = next((g for g in every if name in (g.label, g.spec)), None)
        if match is None:
            known = ", ".join(sorted({g.label for g in every})) or "none"
            raise SkillmixError(f"no grader {name!r} in the config (known: {known})",
                                field="--grader")
        if match not in out:
            out.append(match)
    return out


def grade_file(cfg: StudyConfig, records_path: str | Path, grader_names: list[str] | None = None
               ) -> dict[str, Path]:
    """Grade an existing records JSONL with the config's graders (or only `grader_names`).

    Example: ``grade_file(cfg, "outputs/demo/eval/records.jsonl", ["claude"])``. Records of the
    study's evaluation also get their metric tables rewritten; the study's data records get
    `kept` redone and the mixes and data card exported again.
    """

    path = Path(records_path)
    if not path.exists():
        raise SkillmixError("no such records file", file=str(path))
    store = RecordStore(path)
    records = store.records()
    if not records:
        raise SkillmixError("no records in the file", file=str(path))
    stage = records[0].stage
    graders = _graders_for(cfg, stage, grader_names)
    if not graders:
        raise SkillmixError(f"the config has no graders for {stage} records", field="graders")
    catalog = cfg.catalog.load()
    paths: dict[str, Path] = {"config": write_resolved_config(cfg)}
    finish = None
    if stage == "datagen" and cfg.data:
        from .datagen import keep_rule
        labels = [g.label for g in cfg.data.graders]
        finish = lambda rec: setattr(rec, "kept", keep_rule(rec, labels))  # noqa: E731
    run = StageRun(cfg)
    try:
        grade_records(run, records, graders, catalog, store, finish=finish)
    except BudgetExhausted as exc:
        run.say(f"stopped: {exc}; re-run to finish")
    finally:
        run.close()
    paths["records"] = path
    if stage == "eval" and path.resolve() == (cfg.out / "eval" / "records.jsonl").resolve():
        from .tables import write_metric_tables
        paths.update(write_metric_tables(cfg))
    if stage == "datagen" and cfg.data and \
            path.resolve() == (cfg.out / "data" / "records.jsonl").resolve():
        from .datagen import planned_items
        from .export import export_data
        paths.update(export_data(cfg, store.records(), catalog,
                                 planned=len(planned_items(cfg, catalog))))
    return paths
