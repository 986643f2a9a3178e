"""Evaluating students with SKILL-MIX(k) (PROTOCOL §8).

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

from ..config import ModelSpec, StudentSpec, StudyConfig
from ..errors import SkillmixError
from ..records import RecordStore, record_id
from .context import BudgetExhausted, StageRun, read_existing, write_resolved_config
from .generate import Pending, generate_texts, pending_items, written_by_others
from .grade import grade_records, grader_rounds


def resolve_student(cfg: StudyConfig, student: StudentSpec) -> tuple[ModelSpec, str | None]:
    """(model spec to load, adapter folder or None) for a student.

    Example: a student `{model: {spec: hf:smollm2-135m-instruct}, adapter: "@train"}` resolves
    to the same spec and `outputs/<study>/train/<run>/adapter`.
    """
    adapter = student.adapter
    if not adapter:
        return student.model, None
    if adapter == "@train" or adapter.startswith("@train:"):
        from ..train import trained_artifact

        run_name = adapter.split(":", 1)[1] if ":" in adapter else None
        # `run=` only when named: the training module's contract for a named run.
        art = trained_artifact(cfg, run=run_name) if run_name else trained_artifact(cfg)
        if art.get("model"):       # full fine-tuning or a merged adapter: load it alone
            return student.model.model_copy(update={"spec": f"hf:{art['model']}"}), None
        if art.get("adapter"):
            return student.model, str(art["adapter"])
        raise SkillmixError(f"training output for {adapter!r} has neither adapter nor model",
                            field=f"evaluation.students[{student.name}].adapter")
    path = Path(adapter).expanduser()
    if (path / "adapter_config.json").exists():
        return student.model, str(path)
    if (path / "config.json").exists():   # a full checkpoint is the model itself
        return student.model.model_copy(update={"spec": f"hf:{path}"}), None
    raise SkillmixError(f"{adapter} is neither a LoRA adapter (adapter_config.json) nor a "
                        "checkpoint (config.json)", field=f"evaluation.students[{student.name}].adapter")


def weights_fingerprint(spec: ModelSpec, adapter: str | None) -> str | None:
    """What identifies a local student's weights: the adapter's content hash, or a full
    checkpoint's file names, sizes and times (hashing 26 GB would take minutes). None for API
    models and aliases, whose weights the spec names."""
    from ..llm.hf_backend import adapter_fingerprint

    if adapter:
        return adapter_fingerprint(adapter)
    kind, _, name = spec.spec.partition(":")
    folder = Path(name).expanduser()
    if kind not in ("hf", "vllm") or not folder.is_dir():
        return None
    import hashlib

    h = hashlib.sha256()
    for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()


def check_vllm_parity(student: StudentSpec, spec: ModelSpec, adapter: str | None, todo,
                      catalog, run: StageRun) -> None:
    """Before a vllm: student writes anything, its greedy outputs must match transformers +
    peft on a few of its own turn-1 prompts (a wrong LoRA setting in vLLM is otherwise silent)."""
    if not spec.spec.startswith("vllm:") or student.parity_prompts == 0 or not todo:
        return
    from ..llm.vllm_backend import parity_check
    from ..prompts import generation_turn1

    prompts = [generation_turn1([catalog.skill(s) for s in p.combination.skills],
                                p.combination.topic) for p in todo[:student.parity_prompts]]
    result = parity_check(spec.spec.split(":", 1)[1], adapter, prompts,
                          engine_options=spec.options.get("engine_options"),
                          max_lora_rank=spec.options.get("max_lora_rank"))
    run.say(f"student {student.name}: vLLM vs transformers greedy parity {result['match']:.0%}")
    if result["match"] < student.parity_min_match:
        raise SkillmixError(
            f"vLLM and transformers + peft disagree on {1 - result['match']:.0%} of "
            f"{len(prompts)} greedy prompts (need {student.parity_min_match:.0%} agreement); "
            "check the adapter and max_lora_rank, or use an hf: student",
            field=f"evaluation.students[{student.name}].parity_min_match")


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


def planned_items(cfg: StudyConfig, catalog, student: StudentSpec) -> list[Pending]:
    """The student's texts: settings x ks x combinations x generation rounds."""
    from ..sampling import sample_combinations

    ev = cfg.evaluation
    items = []
    for setting in ev.settings:
        for k in ev.ks:
            combos = sample_combinations(catalog, k, ev.n_combinations, seed=ev.seed,
                                         skills=setting, topics=setting)
            for c in combos:
                c = c.model_copy(update={"setting": setting})
                for g in range(ev.generation_rounds):
                    items.append(Pending(record_id("eval", setting, k, c.index, g, student=student.name), c, g))
    return items


def _dry_run(cfg, catalog, students, existing) -> dict:
    from ..prompts import sentence_limit
    from .plan import Plan, plan_generation, plan_grading

    plan = Plan(f"skillmix evaluate {cfg.name}: dry run (nothing is written)")
    for student in students:
        items = planned_items(cfg, catalog, student)
        try:
            spec, adapter = resolve_student(cfg, student)
            todo = pending_items(items, existing, (spec.spec, adapter,
                                                   weights_fingerprint(spec, adapter)))
        except SkillmixError as exc:   # e.g. "@train" before training: plan with the base
            spec, adapter = student.model, None
            todo = pending_items(items, existing)
            plan.notes.append(f"student {student.name}: {exc} (planned with the base model)")
        plan_generation(plan, spec, todo, catalog, f"student {student.name}")
        for g in cfg.evaluation.graders:
            combos = [p.combination for p in items
                      if not (p.id in existing and all(
                          any(x.grader == g.label and x.round == r and x.status == "ok"
                              for x in existing[p.id].gradings) for r in grader_rounds(g)))]
            plan_grading(plan, g, combos, catalog,
                         answer_tokens=min(spec.max_tokens, 30 * sentence_limit(max(cfg.evaluation.ks))),
                         label="eval", rounds=len(grader_rounds(g)))
        plan.notes.append(f"student {student.name}: {len(items)} texts planned, "
                          f"{len(items) - len(todo)} already written")
    print(plan.render())
    return {}


def run_evaluation(cfg: StudyConfig, students: list[str] | None = None, dry_run: bool = False
                   ) -> dict[str, Path]:
    """Write, grade and tabulate SKILL-MIX for the config's students; returns the paths written.

    Example: ``run_evaluation(cfg, students=["base"])["metrics"]``. Resumes from
    eval/records.jsonl; stops cleanly when the budget is spent (tables cover what is done).
    """
    from .tables import write_metric_tables

    if cfg.evaluation is None:
        raise SkillmixError("the config has no evaluation section", field="evaluation")
    catalog = cfg.catalog.load()
    chosen = selected_students(cfg, students)
    path = cfg.out / "eval" / "records.jsonl"
    existing = read_existing(path)
    if dry_run:
        return _dry_run(cfg, catalog, chosen, existing)

    paths: dict[str, Path] = {"config": write_resolved_config(cfg)}
    store = RecordStore(path)
    run = StageRun(cfg)
    mine: set[str] = set()
    try:
        for student in chosen:
            items = planned_items(cfg, catalog, student)
            mine.update(p.id for p in items)
            spec, adapter = resolve_student(cfg, student)
            weights = weights_fingerprint(spec, adapter)
            writer = (spec.spec, adapter, weights)
            stale = written_by_others(items, existing, writer)
            if stale:
                run.say(f"student {student.name}: {stale} texts came from other weights "
                        "(retrained or changed); rewriting them")
            todo = pending_items(items, existing, writer)
            if not todo:
                continue
            check_vllm_parity(student, spec, adapter, todo, catalog, run)
            run.say(f"student {student.name} ({spec.spec}"
                    + (f" + {adapter}" if adapter else "") + f"): writing {len(todo)} texts")
            generate_texts(run, spec, todo, catalog, store, stage="eval", student=student.name,
                           adapter=adapter, weights=weights)
            run.release(spec, adapter)   # free a local student before the next one loads
        records = [r for r in store.records() if r.id in mine]
        grade_records(run, records, cfg.evaluation.graders, catalog, store)
    except BudgetExhausted as exc:
        run.say(f"stopped: {exc}; what finished is saved, re-run to resume")
    finally:
        run.close()
    paths["records"] = path
    paths.update(write_metric_tables(cfg))
    return paths
