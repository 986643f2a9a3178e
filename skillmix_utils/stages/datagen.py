"""Generating D_SKILL-MIX(k): the teacher writes, the graders filter, the mixes are exported.

    skillmix generate-data configs/demo.yaml [--dry-run]

docs/protocol.md §6: k = 1 over all skills and the training topics, k = 2 and 3 over the training skills
and topics (`data.pools`, `data.counts` generations per k, one generation per combination).
Every text is graded by every `data.graders` entry; the derived points apply the deterministic
length count and the explicit-name rule (`scoring`). **Keep rule**: a text is kept when every
configured grader's majority vote gives it all k + 3 points (with one grader, as in the paper,
that is simply "full marks"); a text some grader could not grade (no valid round) is not kept
until it can be. Outputs: data/records.jsonl, data/mixes/, data/data_card.json|.md.
"""
from __future__ import annotations

from pathlib import Path

from skillmix_utils.core.config import write_resolved_config
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.numbers import plural
from skillmix_utils.core.prompts import sentence_limit
from skillmix_utils.core.records import RecordStore, TextRecord
from skillmix_utils.stages.context import BudgetExhausted, StageRun, read_existing
from skillmix_utils.stages.current import current_data_records, retire, revive
from skillmix_utils.stages.draws import SETTING, data_items  # noqa: F401  (SETTING re-exported)
from skillmix_utils.stages.export import export_data
from skillmix_utils.stages.generate import Pending, Writer, generate_texts, pending_items, written_by_others
from skillmix_utils.stages.grade import grade_records, plan_gradings
from skillmix_utils.stages.plan import Plan, plan_generation
from skillmix_utils.stages.preflight import check_study
from skillmix_utils.stages.scoring import keep_rule, rescore, study_graders  # noqa: F401  (keep_rule re-exported)


def planned_items(cfg, catalog) -> list[Pending]:
    """The datagen combinations of the config (`draws.data_items`)."""
    return data_items(cfg, catalog)


def dry_run_plan(cfg, seen: set | None = None) -> Plan:
    """What `run_datagen(cfg)` would ask, priced: the teacher's texts still to be written and
    the gradings owed, found as the real run finds them. `seen`: the reuse keys already counted
    (a grid's earlier runs, `plan.Plan`)."""
    if cfg.data is None:
        raise SkillmixError("the config has no data section", field="data")
    catalog = cfg.catalog.load()
    items = planned_items(cfg, catalog)
    existing = read_existing(cfg.out / "data" / "records.jsonl")
    plan = Plan(f"skillmix generate-data {cfg.name}: dry run (nothing is written)", seen)
    writer = Writer(cfg.data.teacher, catalog)
    todo = pending_items(items, existing, writer)
    keys = plan_generation(plan, writer, todo, "teacher")
    pending = {p.id for p in todo}
    written = [existing[p.id] for p in items if p.id not in pending]
    plan_gradings(plan, cfg.data.graders, written, todo, keys, catalog,
                  answer_tokens=30 * sentence_limit(max(cfg.data.counts)), label="data")
    plan.notes.append(f"{plural(len(items), 'combination')}, {len(items) - len(todo)} already written")
    return plan


def run_datagen(cfg, dry_run: bool = False) -> dict[str, Path]:
    """Generate, grade, filter and export D_SKILL-MIX for `cfg`; returns the paths written.

    Example: ``run_datagen(load_study_config("configs/demo.yaml"))["mix:k1-2-3"]``.
    Resumes from data/records.jsonl; stops cleanly (and exports what is kept) when the budget is
    spent. With `dry_run=True` prints the plan and writes nothing.
    """

    if dry_run:
        print(dry_run_plan(cfg).render())
        return {}
    if cfg.data is None:
        raise SkillmixError("the config has no data section", field="data")
    catalog = cfg.catalog.load()
    items = planned_items(cfg, catalog)
    path = cfg.out / "data" / "records.jsonl"
    existing = read_existing(path)

    check_study(cfg, None, ["data"])   # keys, pools, paths, adapters: before anything is written
    paths: dict[str, Path] = {"config": write_resolved_config(cfg)}
    store = RecordStore(path)
    labels = [g.label for g in cfg.data.graders]
    run = StageRun(cfg)
    stopped = None

    def finish(rec: TextRecord) -> None:
        rec.kept = keep_rule(rec, labels)

    writer = Writer(cfg.data.teacher, catalog)
    if revive(store, {p.id: writer.identity(p) for p in items}):
        existing = read_existing(path)
    other = written_by_others(items, existing, writer)
    if other:   # ids name neither the teacher nor its settings: never mix two ways of making
        run.say(f"{plural(other, 'existing text was', 'existing texts were')} made otherwise "
                "(another teacher, sampling setting, prompt or catalog entry); rewriting them")
    try:
        todo = pending_items(items, existing, writer)
        if todo:
            run.say(f"teacher {cfg.data.teacher.spec}: writing {plural(len(todo), 'text')}")
            generate_texts(run, cfg.data.teacher, todo, catalog, store, stage="datagen")
        records = current_data_records(cfg, catalog, store, items)
        grade_records(run, records, cfg.data.graders, catalog, store, finish=finish)
    except BudgetExhausted as exc:
        stopped = str(exc)
        run.say(f"stopped: {stopped}; what finished is saved, re-run to resume")
    finally:
        run.close()

    # Scoring settings or graders may have changed since the gradings were made: score again
    # (free) and store the result, which the keep rule, mixes and data card then read.

    retire(store, {p.id for p in items})       # no longer planned: moved aside, not deleted
    records = current_data_records(cfg, catalog, store, items)
    store.append(rescore(records, cfg.scoring, study_graders(cfg, "datagen"), catalog, finish))
    paths["records"] = store.path
    paths.update(export_data(cfg, records, catalog, planned=len(items), stopped=stopped))
    run.conclude(records, labels, "data generation", store.path, stopped)   # exit != 0 unless whole
    return paths
