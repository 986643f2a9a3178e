"""Evaluating students with SKILL-MIX(k) (docs/protocol.md §8).

    skillmix evaluate configs/demo.yaml [--student tuned] [--dry-run]

For every student x setting (train / held_out / all) x k: `evaluation.n_combinations` seeded
combinations drawn from the setting's skills and topics (the same for every student), written
`generation_rounds` times (round g sends seed `round_seed(model, g)`), each text graded by every
`evaluation.graders` entry `rounds` times. Records go to eval/records.jsonl (ids
`eval/<student>/<setting>/k<k>/c<index>/g<round>`), tables to eval/tables/.

A student is a base model (`model`), optionally with `adapter`: a LoRA adapter folder, a full
checkpoint folder (used as the model itself), or "@train" / "@train:<run>" (this study's
training output, through `train.trained_artifact`).
"""
from __future__ import annotations

from pathlib import Path

from skillmix_utils.core.config import ModelSpec, StudentSpec, StudyConfig, write_resolved_config
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.numbers import plural
from skillmix_utils.core.prompts import generation_turn1, sentence_limit
from skillmix_utils.core.records import RecordStore
from skillmix_utils.llm.vllm_backend import context_length, parity_check
from skillmix_utils.stages.context import BudgetExhausted, StageRun, read_existing
from skillmix_utils.stages.current import current_eval_records, revive
from skillmix_utils.stages.draws import eval_items, training_keys
from skillmix_utils.stages.generate import Pending, Writer, generate_texts, pending_items, written_by_others
from skillmix_utils.stages.grade import grade_records, plan_gradings
from skillmix_utils.stages.plan import Plan, plan_generation
from skillmix_utils.stages.preflight import check_study
from skillmix_utils.stages.students import resolve_student, weights_fingerprint  # noqa: F401  (re-exported)
from skillmix_utils.stages.tables import write_metric_tables


def check_vllm_parity(student: StudentSpec, spec: ModelSpec, adapter: str | None, todo,
                      catalog, run: StageRun) -> None:
    """Before a vllm: student writes anything, its greedy decodings must agree with
    transformers + peft's on a few of its own turn-1 prompts, in the same dtype with the
    adapter applied the same way (`llm.vllm_backend.parity_check`; a wrong LoRA setting in
    vLLM is otherwise silent). Made the same way, every prompt agrees."""
    if not spec.spec.startswith("vllm:") or student.parity_prompts == 0 or not todo:
        return

    prompts = [generation_turn1([catalog.skill(s) for s in p.combination.skills],
                                p.combination.topic) for p in todo[:student.parity_prompts]]
    # On the stage's own backend for this student: its engine then writes the texts too.
    # At most 32 tokens: a wrong setting shows in the first few, and never more than it writes.
    result = parity_check(spec.spec.split(":", 1)[1], adapter, prompts,
                          max_tokens=min(32, spec.max_tokens),
                          engine_options=spec.options.get("engine_options"),
                          max_lora_rank=spec.options.get("max_lora_rank"),
                          backend=run.backend(spec, adapter))
    run.say(f"student {student.name}: vLLM vs transformers greedy parity {result['match']:.0%}"
            + (f" ({result['dtype']})" if result.get("dtype") else ""))
    if result["match"] < student.parity_min_match:
        why = next((w for w in result.get("diverged") or [] if w), None)
        raise SkillmixError(
            f"vLLM and transformers + peft disagree on {1 - result['match']:.0%} of "
            f"{len(prompts)} greedy prompts (need {student.parity_min_match:.0%} agreement"
            + (f"; first: {why}" if why else "") + "); "
            "check the adapter and max_lora_rank, or use an hf: student",
            field=f"evaluation.students[{student.name}].parity_min_match")


def serving_spec(spec: ModelSpec, writer: Writer, todo: list[Pending]) -> ModelSpec:
    """A vllm: student's spec with `max_model_len`, the context its texts need (both turns and
    both replies at `max_tokens`, `context_length`), so that the engine does not reserve memory
    for the model's whole window (32k for Mistral-7B). Not for other students, or when the
    config sets engine_options.max_model_len. It changes no text (`identity.TRANSPORT_OPTIONS`)."""
    if not spec.spec.startswith("vllm:") or not todo or \
            "max_model_len" in (spec.options.get("engine_options") or {}):
        return spec
    need = context_length(spec.spec.split(":", 1)[1], [writer.turns(p) for p in todo],
                          spec.max_tokens)
    return spec.model_copy(update={"options": {**spec.options, "max_model_len": need}})


def selected_students(cfg: StudyConfig, names: list[str] | None) -> list[StudentSpec]:
    """The config's students, or only those named (unknown names are an error)."""
    students = cfg.evaluation.students
    if not names:
        return list(students)
    known = {s.name: s for s in students}
    missing = [n for n in names if n not in known]
    if missing:
        raise SkillmixError(f"no student {missing[0]!r} (known: {', '.join(known)})",
                            field="--student")
    return [known[n] for n in names]


def planned_items(cfg: StudyConfig, catalog, student: StudentSpec, exclude=None) -> list[Pending]:
    """The student's texts: settings x ks x combinations x generation rounds, drawn for
    evaluation and never a training combination (`draws.eval_items`)."""
    return eval_items(cfg, catalog, student, exclude)


def dry_run_plan(cfg: StudyConfig, students: list[str] | None = None,
                 seen: set | None = None) -> Plan:
    """What `run_evaluation(cfg, students)` would ask, priced: each student's texts still to be
    written and the gradings owed, found as the real run finds them. A student whose weights do
    not exist yet ("@train" before training) is planned with its base model, and its requests
    are never taken for another's. `seen`: the reuse keys already counted (a grid's earlier
    runs, `plan.Plan`)."""
    if cfg.evaluation is None:
        raise SkillmixError("the config has no evaluation section", field="evaluation")
    catalog = cfg.catalog.load()
    existing = read_existing(cfg.out / "eval" / "records.jsonl")
    plan = Plan(f"skillmix evaluate {cfg.name}: dry run (nothing is written)", seen)
    train = training_keys(cfg, catalog)
    for student in selected_students(cfg, students):
        items = planned_items(cfg, catalog, student, train)
        try:
            spec, adapter = resolve_student(cfg, student)
            writer, shared = Writer(spec, catalog, adapter=adapter,
                                    weights=weights_fingerprint(spec, adapter)), True
        except SkillmixError as exc:   # e.g. "@train" before training: plan with the base
            writer, shared = Writer(student.model, catalog), False
            plan.notes.append(f"student {student.name}: {exc} (planned with the base model)")
        todo = pending_items(items, existing, writer if shared else None)
        keys = plan_generation(plan, writer, todo, f"student {student.name}", shared)
        pending = {p.id for p in todo}
        plan_gradings(plan, cfg.evaluation.graders,
                      [existing[p.id] for p in items if p.id not in pending], todo, keys, catalog,
                      answer_tokens=min(writer.spec.max_tokens,
                                        30 * sentence_limit(max(cfg.evaluation.ks))),
                      label="eval")
        plan.notes.append(f"student {student.name}: {plural(len(items), 'text')} planned, "
                          f"{len(items) - len(todo)} already written")
    return plan


def run_evaluation(cfg: StudyConfig, students: list[str] | None = None, dry_run: bool = False
                   ) -> dict[str, Path]:
    """Write, grade and tabulate SKILL-MIX for the config's students; returns the paths written.

    Example: ``run_evaluation(cfg, students=["base"])["metrics"]``. Resumes from
    eval/records.jsonl; stops cleanly when the budget is spent (tables cover what is done).
    """

    if dry_run:
        print(dry_run_plan(cfg, students).render())
        return {}
    if cfg.evaluation is None:
        raise SkillmixError("the config has no evaluation section", field="evaluation")
    catalog = cfg.catalog.load()
    chosen = selected_students(cfg, students)
    path = cfg.out / "eval" / "records.jsonl"
    existing = read_existing(path)

    check_study(cfg, None, ["evaluation"])   # keys, pools, paths, adapters: before anything is written
    paths: dict[str, Path] = {"config": write_resolved_config(cfg)}
    store = RecordStore(path)
    run = StageRun(cfg)
    mine: set[str] = set()
    stopped = None
    train = training_keys(cfg, catalog)
    try:
        for student in chosen:
            items = planned_items(cfg, catalog, student, train)
            mine.update(p.id for p in items)
            spec, adapter = resolve_student(cfg, student)
            weights = weights_fingerprint(spec, adapter)
            writer = Writer(spec, catalog, adapter=adapter, weights=weights)
            if revive(store, {p.id: writer.identity(p) for p in items}):
                existing = read_existing(path)
            stale = written_by_others(items, existing, writer)
            if stale:
                run.say(f"student {student.name}: {plural(stale, 'text was', 'texts were')} made "
                        "otherwise (other weights, sampling settings, prompt or catalog "
                        "entries); rewriting them")
            todo = pending_items(items, existing, writer)
            if not todo:
                continue
            spec = serving_spec(spec, writer, todo)
            check_vllm_parity(student, spec, adapter, todo, catalog, run)
            run.say(f"student {student.name} ({spec.spec}"
                    + (f" + {adapter}" if adapter else "") + f"): writing {plural(len(todo), 'text')}")
            generate_texts(run, spec, todo, catalog, store, stage="eval", student=student.name,
                           adapter=adapter, weights=weights)
            run.release(spec, adapter)   # free a local student before the next one loads
        records = [r for r in current_eval_records(cfg, catalog, store.records()) if r.id in mine]
        grade_records(run, records, cfg.evaluation.graders, catalog, store)
    except BudgetExhausted as exc:
        stopped = str(exc)
        run.say(f"stopped: {exc}; what finished is saved, re-run to resume")
    finally:
        run.close()
    paths["records"] = path
    paths.update(write_metric_tables(cfg))
    run.conclude([r for r in store.records() if r.id in mine],
                 [g.label for g in cfg.evaluation.graders], "evaluation", path, stopped)
    return paths
