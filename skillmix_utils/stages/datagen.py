"""Generating D_SKILL-MIX(k): the teacher writes, the graders filter, the mixes are exported.

    skillmix generate-data configs/demo.yaml [--dry-run]

PROTOCOL §6: k = 1 over all skills and the training topics, k = 2 and 3 over the training skills
and topics (`data.pools`, `data.counts` generations per k, one generation per combination).
Every text is graded by every `data.graders` entry; the derived points apply the deterministic
length count and the explicit-name rule (`scoring`). **Keep rule**: a text is kept when every
configured grader's majority vote gives it all k + 3 points (with one grader, as in the paper,
that is simply "full marks"); a text some grader could not grade (no valid round) is not kept
until it can be. Outputs: data/records.jsonl, data/mixes/, data/data_card.json|.md.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import SkillmixError
from ..records import RecordStore, TextRecord, record_id
from .context import BudgetExhausted, StageRun, read_existing, write_resolved_config
from .generate import Pending, generate_texts, pending_items, written_by_others
from .grade import grade_records, grader_rounds
from .scoring import derive

SETTING = "data"   # the setting part of datagen record ids; the pools are in the combination


def keep_rule(rec: TextRecord, grader_labels: list[str]) -> bool | None:
    """Full marks by every grader's vote; None while some grader has no valid round yet.

    >>> from skillmix_utils.records import Combination, Derived
    >>> r = TextRecord(id="x", stage="datagen", model="m", answer="a",
    ...     combination=Combination(skills=("metaphor",), topic="Knots", k=1),
    ...     derived=Derived(voted_points={"g": [1.0, 1.0, 1.0, 1.0]}))
    >>> keep_rule(r, ["g"]), keep_rule(r, ["g", "h"])
    (True, None)
    """
    if rec.status != "ok" or rec.answer is None:
        return None
    votes = [rec.derived.voted_points.get(label) for label in grader_labels]
    if any(v is None for v in votes):
        return None
    k = rec.combination.k
    return all(len(v) == k + 3 and all(p is not None and p >= 1.0 for p in v) for v in votes)


def planned_items(cfg, catalog) -> list[Pending]:
    """The datagen combinations of the config, as pending items with deterministic ids."""
    from ..sampling import sample_combinations

    items = []
    for k, n in sorted(cfg.data.counts.items()):
        pool = cfg.data.pools[k]
        for c in sample_combinations(catalog, k, n, seed=cfg.data.seed,
                                     skills=pool.skills, topics=pool.topics):
            items.append(Pending(record_id("datagen", SETTING, k, c.index, 0), c, 0))
    return items


def _dry_run(cfg, catalog, items, existing) -> dict:
    from .plan import Plan, plan_generation, plan_grading
    from ..prompts import sentence_limit

    plan = Plan(f"skillmix generate-data {cfg.name}: dry run (nothing is written)")
    todo = pending_items(items, existing, (cfg.data.teacher.spec, None, None))
    plan_generation(plan, cfg.data.teacher, todo, catalog, "teacher")
    for g in cfg.data.graders:
        combos = [p.combination for p in items
                  if not (p.id in existing and all(
                      any(x.grader == g.label and x.round == r and x.status == "ok"
                          for x in existing[p.id].gradings) for r in grader_rounds(g)))]
        plan_grading(plan, g, combos, catalog,
                     answer_tokens=30 * sentence_limit(max(cfg.data.counts)),
                     label="data", rounds=len(grader_rounds(g)))
    plan.notes.append(f"{len(items)} combinations, {len(items) - len(todo)} already written")
    print(plan.render())
    return {}


def run_datagen(cfg, dry_run: bool = False) -> dict[str, Path]:
    """Generate, grade, filter and export D_SKILL-MIX for `cfg`; returns the paths written.

    Example: ``run_datagen(load_study_config("configs/demo.yaml"))["mix:k1-2-3"]``.
    Resumes from data/records.jsonl; stops cleanly (and exports what is kept) when the budget is
    spent. With `dry_run=True` prints the plan and writes nothing.
    """
    from .export import export_data

    if cfg.data is None:
        raise SkillmixError("the config has no data section", field="data")
    catalog = cfg.catalog.load()
    items = planned_items(cfg, catalog)
    path = cfg.out / "data" / "records.jsonl"
    existing = read_existing(path)
    if dry_run:
        return _dry_run(cfg, catalog, items, existing)

    from ..preflight import check_study
    check_study(cfg, None, ["data"])   # keys, pools, paths, adapters: before anything is written
    paths: dict[str, Path] = {"config": write_resolved_config(cfg)}
    store = RecordStore(path)
    labels = [g.label for g in cfg.data.graders]
    run = StageRun(cfg)
    stopped = None

    def finish(rec: TextRecord) -> None:
        rec.kept = keep_rule(rec, labels)

    writer = (cfg.data.teacher.spec, None, None)
    other = written_by_others(items, existing, writer)
    if other:   # ids do not name the teacher: two teachers' texts are never mixed
        run.say(f"{other} existing texts were written by another teacher; rewriting them")
    try:
        todo = pending_items(items, existing, writer)
        if todo:
            run.say(f"teacher {cfg.data.teacher.spec}: writing {len(todo)} texts")
            generate_texts(run, cfg.data.teacher, todo, catalog, store, stage="datagen")
        mine = {p.id for p in items}
        records = [r for r in store.records() if r.id in mine]
        grade_records(run, records, cfg.data.graders, catalog, store, finish=finish)
    except BudgetExhausted as exc:
        stopped = str(exc)
        run.say(f"stopped: {stopped}; what finished is saved, re-run to resume")
    finally:
        run.close()

    # Scoring settings may have changed since the gradings were made: re-derive (free).
    records = [r for r in store.records() if r.id in {p.id for p in items}]
    changed = []
    for rec in records:
        before = (rec.derived, rec.kept)
        rec.derived = derive(rec, cfg.scoring)
        finish(rec)
        if (rec.derived, rec.kept) != before:
            changed.append(rec)
    store.append(changed)
    paths["records"] = store.path
    paths.update(export_data(cfg, records, catalog, planned=len(items), stopped=stopped))
    run.conclude(records, labels, "data generation", store.path, stopped)   # exit != 0 unless whole
    return paths
