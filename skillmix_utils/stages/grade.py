"""Grading: every grader x round on every text, the raw reply kept (docs/protocol.md §4).

    skillmix grade configs/demo.yaml --records outputs/demo/eval/records.jsonl --grader claude

A grading that fails is recorded, not scored: `status="error"` (the call failed) or
`"parse_failed"` (the reply could not be mapped onto the k + 3 criteria). An unreadable reply is
asked again up to the grader's `parse_retries` times in the same run, each time with another
seed (`PARSE_RETRY_SEED`; the grading keeps its round's identity), and stays `parse_failed` if
no attempt can be read; more than `max_unreadable` of a grader's gradings left so makes the
stage exit 1 (`StageRun.conclude`). Both kinds count as missing rounds in the vote and are asked
again on the next run; the llm cache answers every repeated request (the retries too) for free,
so a re-run after a parser fix re-reads the stored replies at no cost. Grading round r
sends seed `round_seed(grader, r)`, so rounds are independent calls, not one reply copied.
Graders are keyed in records and tables by `GraderSpec.label` (its `name`, else its spec).

A grading is owed until the record holds an "ok" grading of that grader and round whose identity
(grader, method, rendered prompt, sampling; `scoring.expected_identity`) is the one it would be
made with now: a changed grader setting, prompt or text is graded anew. How each method is asked
and read comes from `grader_methods` (data/grader_methods.yaml). Each grading keeps the parser's
diagnostics (`Grading.parse`: shape read, how rows were matched, notes, or why it failed).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from skillmix_utils.core.config import GraderSpec, StudyConfig, write_resolved_config
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.grader_methods import method as method_of
from skillmix_utils.core.grader_methods import rounds_of
from skillmix_utils.core.grading import parse_grade
from skillmix_utils.core.identity import grading_identity
from skillmix_utils.core.numbers import plural
from skillmix_utils.core.prompts import rubric_items
from skillmix_utils.core.records import Grading, RecordStore, TextRecord, Usage
from skillmix_utils.stages import local_judge
from skillmix_utils.stages.context import BudgetExhausted, StageRun, round_seed
from skillmix_utils.stages.current import current_data_records, current_eval_records
from skillmix_utils.stages.draws import data_items
from skillmix_utils.stages.export import export_data
from skillmix_utils.stages.generate import with_system
from skillmix_utils.stages.plan import Plan, grading_keys, plan_grading, reuse_key
from skillmix_utils.stages.scoring import expected_identity, grader_prompt, keep_rule, score, study_graders
from skillmix_utils.stages.tables import write_metric_tables


def grader_rounds(grader: GraderSpec) -> list[int]:
    """The rounds a grader is asked (`grader_methods.rounds_of`)."""
    return rounds_of(grader)


def _done(rec: TextRecord, grader: GraderSpec, round_: int, catalog, prompt: str | None = None
          ) -> bool:
    if catalog is None:
        return any(g.grader == grader.label and g.round == round_ and g.status == "ok"
                   for g in rec.gradings)
    mine = [g for g in rec.gradings
            if g.grader == grader.label and g.round == round_ and g.status == "ok"]
    if not mine:
        return False
    want = expected_identity(grader, rec, round_, catalog, prompt)
    return any(g.identity == want for g in mine)


def _put(rec: TextRecord, grading: Grading) -> None:
    rec.gradings = [g for g in rec.gradings
                    if not (g.grader == grading.grader and g.round == grading.round)] + [grading]


def pending_gradings(records, grader: GraderSpec, catalog=None) -> list[tuple[TextRecord, int]]:
    """(record, round) pairs this grader still owes: texts that exist and lack an ok grading
    made the way this grader would make it now (with `catalog`; without it any ok grading of
    that round counts)."""
    out = []
    for r in grader_rounds(grader):
        for rec in records:
            if rec.status != "ok" or rec.answer is None:
                continue
            prompt = None
            if catalog is not None:
                try:
                    prompt = grader_prompt(grader, rec, catalog)
                except Exception:
                    _skills(catalog, rec)      # raises the clear message
            if not _done(rec, grader, r, catalog, prompt):
                out.append((rec, r))
    return out


def plan_gradings(plan: Plan, graders, written, todo, text_keys: dict, catalog,
                  answer_tokens: int, label: str) -> dict[str, int]:
    """For a dry run: add to `plan` the gradings a real run would ask, every round of each text
    still to be written (`todo`, whose reuse keys are `text_keys`) and what `pending_gradings`
    finds owed on the `written` records. Returns {grader label: gradings owed}."""
    owed = {}
    for g in graders:
        asks = []
        for r in grader_rounds(g):
            keys = grading_keys(g, round_seed(g, r), [text_keys.get(p.id) for p in todo])
            asks += [(p.combination, None, key) for p, key in zip(todo, keys)]
        asks += [(rec.combination, rec.answer, reuse_key(g, expected_identity(g, rec, r, catalog)))
                 for rec, r in pending_gradings(written, g, catalog)]
        plan_grading(plan, g, asks, catalog, answer_tokens, label)
        owed[g.label] = len(asks)
    return owed


def _skills(catalog, rec: TextRecord):
    try:
        return [catalog.skill(s) for s in rec.combination.skills]
    except Exception as exc:
        raise SkillmixError(f"record {rec.id}: skill not in the study's catalog ({exc})",
                            field="catalog.skills") from None


def _diagnostics(parsed) -> dict:
    return {"shape": parsed.shape, "matched_by": parsed.matched_by,
            "rows_matched": parsed.rows_matched, "missing": list(parsed.missing),
            "notes": list(parsed.notes)}


# Attempt a of an unreadable grading sends the round's seed + a * PARSE_RETRY_SEED: another
# sample, and its own cache entry (so a re-run is answered by the cache, attempt by attempt).
PARSE_RETRY_SEED = 1000


def _chat_gradings(grader: GraderSpec, backend, catalog, pairs) -> list[Grading]:
    out: list[Grading | None] = [None] * len(pairs)
    by_round: dict[int, list[int]] = {}
    for i, (_, r) in enumerate(pairs):
        by_round.setdefault(r, []).append(i)

    def grading(i, r, p, res, attempt: int) -> Grading:
        rec = pairs[i][0]
        g = Grading(grader=grader.label, method=grader.method, round=r, prompt=p,
                    raw_reply=res.text, finish_reason=res.finish_reason,
                    identity=grading_identity(grader, round_seed(grader, r), p),
                    usage=Usage(input_tokens=res.input_tokens or 0,
                                output_tokens=res.output_tokens or 0,
                                cost_usd=res.cost_usd or 0.0, cached=bool(res.cached)))
        if not res.ok:
            g.status, g.error = "error", res.error
        else:
            parsed = parse_grade(res.text or "", rubric_items(
                list(rec.combination.skills), rec.combination.topic, grader.skill_criterion))
            # An unreadable reply keeps the items it has (None for the rest): scoring decides
            # what the rest count (`scoring.unreadable`).
            kept = parsed.points if parsed.ok else parsed.partial
            g.points = None if kept is None else list(kept)
            g.stated_total = parsed.stated_total
            g.status = "ok" if parsed.ok else "parse_failed"
            g.parse = {**_diagnostics(parsed), "attempts": attempt + 1}
        return g

    for r, idx in sorted(by_round.items()):
        prompts_ = [grader_prompt(grader, pairs[i][0], catalog) for i in idx]
        results = backend.chat([with_system(grader, [{"role": "user", "content": p}]) for p in prompts_],
                               temperature=grader.temperature, max_tokens=grader.max_tokens,
                               n=1, seed=round_seed(grader, r))
        for i, p, res in zip(idx, prompts_, results):
            out[i] = grading(i, r, p, res, 0)
        for attempt in range(1, grader.parse_retries + 1):
            again = [(i, p) for i, p in zip(idx, prompts_) if out[i].status == "parse_failed"]
            if not again:
                break
            retried = backend.chat([with_system(grader, [{"role": "user", "content": p}]) for _, p in again],
                                   temperature=grader.temperature, max_tokens=grader.max_tokens,
                                   n=1, seed=round_seed(grader, r) + PARSE_RETRY_SEED * attempt)
            for (i, p), res in zip(again, retried):
                before = out[i]
                if not res.ok:          # keep the unreadable reply; a spent budget still stops
                    before.error = res.error if res.error == "budget_exceeded" else before.error
                    continue
                g = grading(i, r, p, res, attempt)
                g.usage = Usage(input_tokens=before.usage.input_tokens + g.usage.input_tokens,
                                output_tokens=before.usage.output_tokens + g.usage.output_tokens,
                                cost_usd=before.usage.cost_usd + g.usage.cost_usd,
                                cached=before.usage.cached and g.usage.cached)
                out[i] = g
    # A spent budget is raised by the caller once the chunk is saved.
    return out  # type: ignore[return-value]


def grade_records(run: StageRun, records: list[TextRecord], graders: list[GraderSpec], catalog,
                  store: RecordStore, *, chunk_size: int | None = None,
                  finish: Callable[[TextRecord], None] | None = None) -> int:
    """Grade what is still owed by `graders` on `records` (updated in place and re-appended).

    After each chunk the stored points are derived again (`scoring.score`), `finish(record)` runs
    (data generation sets `kept` there) and the records are appended. Returns the number of
    gradings made. Raises `BudgetExhausted` after saving the chunk that spent the budget.
    """
    made = 0
    chunk_size = chunk_size or run.chunk_size
    for grader in graders:
        if len(rounds_of(grader)) > 1 and grader.temperature == 0:
            run.say(f"warning: grader {grader.label} samples {grader.rounds} rounds at "
                    "temperature 0: they are copies of one grading, not independent votes "
                    "(the provider default is 1.0)")
        pairs = pending_gradings(records, grader, catalog)
        if not pairs:
            continue
        backend = run.backend(grader)
        entry = method_of(grader.method)
        if entry.needs == "yes_no_probabilities":
            local_judge.check_backend(backend, grader.spec)
        run.say(f"grading {plural(len(pairs), 'text-round')} with {grader.label} ({grader.method})")
        phase = run.progress.phase(f"grader {grader.label}: grade", len(pairs), unit="gradings")
        for start in range(0, len(pairs), chunk_size):
            chunk = pairs[start:start + chunk_size]
            exhausted = None
            if entry.parser == "yes_no_probabilities":
                gradings = local_judge.judge(backend, grader.label, [
                    (_skills(catalog, rec), rec.combination.topic, rec.answer) for rec, _ in chunk])
                for (rec, r), g in zip(chunk, gradings):
                    g.identity = grading_identity(grader, round_seed(grader, r),
                                                  grader_prompt(grader, rec, catalog))
            else:
                gradings = _chat_gradings(grader, backend, catalog, chunk)
            touched = {}
            for (rec, _), g in zip(chunk, gradings):
                if g.error == "budget_exceeded":
                    exhausted = g.error
                _put(rec, g)
                touched[rec.id] = rec
            counted = list(graders) + [g for g in study_graders(run.cfg, chunk[0][0].stage)
                                       if g.label not in {x.label for x in graders}]
            for rec in touched.values():
                rec.derived = score(rec, run.cfg.scoring, counted, catalog)
                if finish:
                    finish(rec)
            store.append(list(touched.values()))
            run.progress.advance(len(chunk), failed=sum(g.status != "ok" for g in gradings),
                                 usd=sum(g.usage.cost_usd or 0.0 for g in gradings if not g.usage.cached),
                                 index=phase)
            made += len(chunk)
            if exhausted:
                raise BudgetExhausted(run.budget_message())
    return made


def graders_for(cfg: StudyConfig, stage: str, names: list[str] | None) -> list[GraderSpec]:
    own = (cfg.evaluation.graders if stage == "eval" and cfg.evaluation
           else cfg.data.graders if stage == "datagen" and cfg.data else [])
    if not names:
        return list(own)
    every = study_graders(cfg, stage)
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


def records_to_grade(cfg: StudyConfig, path: Path, grader_names: list[str] | None = None):
    """What `grade_file` works on: (store, stage, records worth grading, graders, catalog).

    The study's own records are filtered to the current ones (a superseded text is never
    counted, so grading it would be money spent for nothing); any other file is graded whole.
    """
    if not path.exists():
        raise SkillmixError("no such records file", file=str(path))
    store = RecordStore(path)
    records = store.records()
    if not records:
        raise SkillmixError("no records in the file", file=str(path))
    stage = records[0].stage
    graders = graders_for(cfg, stage, grader_names)
    if not graders:
        raise SkillmixError(f"the config has no graders for {stage} records", field="graders")
    catalog = cfg.catalog.load()
    if stage == "eval" and cfg.evaluation and \
            path.resolve() == (cfg.out / "eval" / "records.jsonl").resolve():
        records = current_eval_records(cfg, catalog, records)
    elif stage == "datagen" and cfg.data and \
            path.resolve() == (cfg.out / "data" / "records.jsonl").resolve():
        records = current_data_records(cfg, catalog, store)
    return store, stage, records, graders, catalog


def grade_file(cfg: StudyConfig, records_path: str | Path, grader_names: list[str] | None = None,
               dry_run: bool = False) -> dict[str, Path]:
    """Grade an existing records JSONL with the config's graders (or only `grader_names`).

    Example: ``grade_file(cfg, "outputs/demo/eval/records.jsonl", ["claude"])``. Records of the
    study's evaluation also get their metric tables rewritten; the study's data records get
    `kept` redone and the mixes and data card exported again. With `dry_run=True` prints the
    gradings still owed (the ones the real run would ask) and their estimated cost, and writes
    nothing.
    """
    path = Path(records_path)
    store, stage, records, graders, catalog = records_to_grade(cfg, path, grader_names)
    if dry_run:
        plan = Plan(f"skillmix grade {cfg.name}: dry run on {path} (nothing is written)")
        owed = plan_gradings(plan, graders, records, [], {}, catalog, 0, stage)
        others = len(store.records()) - len(records)
        plan.notes.extend(f"{label}: {plural(n, 'grading')} owed on {plural(len(records), 'record')}"
                          + (f" ({plural(others, 'record')} not current, never graded)" if others
                             else "")
                          for label, n in owed.items())
        print(plan.render())
        return {}
    paths: dict[str, Path] = {"config": write_resolved_config(cfg)}
    finish = None
    if stage == "datagen" and cfg.data:
        labels = [g.label for g in cfg.data.graders]
        finish = lambda rec: setattr(rec, "kept", keep_rule(rec, labels))  # noqa: E731
    run = StageRun(cfg)
    stopped = None
    try:
        grade_records(run, records, graders, catalog, store, finish=finish)
    except BudgetExhausted as exc:
        stopped = str(exc)
        run.say(f"stopped: {exc}; re-run to finish")
    finally:
        run.close()
    paths["records"] = path
    if stage == "eval" and path.resolve() == (cfg.out / "eval" / "records.jsonl").resolve():
        paths.update(write_metric_tables(cfg))
    if stage == "datagen" and cfg.data and \
            path.resolve() == (cfg.out / "data" / "records.jsonl").resolve():
        items = data_items(cfg, catalog)
        paths.update(export_data(cfg, current_data_records(cfg, catalog, store, items), catalog,
                                 planned=len(items)))
    run.conclude([r for r in records if r.status == "ok"], [g.label for g in graders],
                 "grading", path, stopped)
    return paths
