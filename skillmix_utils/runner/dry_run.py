"""`skillmix run --dry-run`: what every notebook's stage would ask, priced once per request across
a grid, and what its local work needs: GPUs, memory per GPU and GPU-hours (stages/compute.py)."""
from __future__ import annotations

from dataclasses import dataclass, field

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.llm.cost import format_usd
from skillmix_utils.runner.markers import Stage
from skillmix_utils.stages import datagen, evaluate
from skillmix_utils.stages.compute import Compute, plan_compute, training_compute


@dataclass
class DryRunTotal:
    """What a dry run adds up over its stages: estimated dollars, whether some model has no
    price, and the reuse keys of the requests counted (`plan.Plan.seen`), shared by a grid's
    runs so that a request the response cache would answer is counted once."""
    usd: float = 0.0
    unpriced: bool = False
    seen: set = field(default_factory=set)
    compute: list[Compute] = field(default_factory=list)     # local work: training, local models
    runs: dict = field(default_factory=dict)     # grid run label -> {"usd": ..., "compute": [...]}


def stage_plan(cfg: StudyConfig, st: Stage, seen: set | None = None):
    """The dry-run plan (`plan.Plan`) of a stage that calls models (02, 04), else None."""
    if st.id == "02":
        return datagen.dry_run_plan(cfg, seen)
    if st.id == "04":
        return evaluate.dry_run_plan(cfg, seen=seen)
    return None


def _quantization(cfg: StudyConfig) -> dict:
    """{spec: options.quantization} of the models the config calls (4-bit weights are smaller)."""
    specs = []
    if cfg.data:
        specs += [cfg.data.teacher, *cfg.data.graders]
    if cfg.evaluation:
        specs += [s.model for s in cfg.evaluation.students] + list(cfg.evaluation.graders)
    return {m.spec: m.options.get("quantization") for m in specs if m.options.get("quantization")}


def stage_compute(cfg: StudyConfig, st: Stage, plan=None) -> list[Compute]:
    """The local work of a stage: its training run (03), its local models' share of `plan`."""
    if st.id == "03" and cfg.train is not None and cfg.train.enabled:
        return [training_compute(cfg)]
    return plan_compute(plan, _quantization(cfg)) if plan is not None else []


def dry_run_costs(cfg: StudyConfig, st: Stage, total: DryRunTotal, label: str = "") -> None:
    """Print a stage's own dry-run plan and its local compute, and add them to `total` (and to
    grid run `label`'s line)."""
    run = total.runs.setdefault(label, {"usd": 0.0, "compute": []}) if label else {"usd": 0.0, "compute": []}
    try:
        plan = stage_plan(cfg, st, total.seen)
    except (ImportError, SkillmixError) as exc:
        print(f"    (no cost estimate: {exc})")
        plan = None
    if plan is not None:
        print(plan.render())
        usd, unpriced = plan.total()
        total.usd += usd
        run["usd"] += usd
        total.unpriced |= unpriced
    try:
        compute = stage_compute(cfg, st, plan)
    except (ImportError, SkillmixError) as exc:
        print(f"    (no GPU estimate: {exc})")
        return
    for c in compute:
        print(f"    GPUs: {c.line()}")
    total.compute += compute
    run["compute"] += compute


def quiet_estimate(cfg: StudyConfig, st: Stage) -> float:
    """The stage's dry-run estimate in USD, computed without printing its plan (0 if none)."""
    try:
        plan = stage_plan(cfg, st)
    except Exception:  # noqa: BLE001 - an estimate is a courtesy; the stage itself reports
        return 0.0
    return plan.total()[0] if plan is not None else 0.0


def print_total(total: DryRunTotal, grid: bool = False) -> None:
    note = ("; a request repeated by a later grid run (the same model asked the same thing, as "
            "for the base students) is counted once: the response cache answers it" if grid else "")
    print(f"dry run: estimated API cost of what would run: {format_usd(total.usd)}"
          f"{' + unpriced models' if total.unpriced else ''} (an upper bound: output at "
          f"max_tokens, cache not consulted{note})")
    if not total.compute:
        print("dry run: local compute: none in what would run (no training, no local model)")
    else:
        train = sum(c.gpu_hours for c in total.compute if c.training)
        local = sum(c.gpu_hours for c in total.compute) - train
        widest = max(total.compute, key=lambda c: (c.gpus, c.gib_per_gpu))
        print(f"dry run: local compute: {train + local:,.1f} GPU-hours (training {train:,.1f}, "
              f"local models {local:,.1f}; estimated for A100-class GPUs, stages/compute.py); the most at once: "
              f"{widest.gpus} GPU{'s' * (widest.gpus != 1)} x {widest.gib_per_gpu:.1f} GiB")
    if grid and total.runs:
        print("dry run per grid run (training; local-model GPU-hours; API dollars counted in this run):")
        for label, run in total.runs.items():
            train = [c for c in run["compute"] if c.training]
            what = "; ".join(f"{c.what.removeprefix('train ')}: {c.needs()}" for c in train) \
                or "none"
            local = sum(c.gpu_hours for c in run["compute"] if not c.training)
            print(f"  {label}: train {what}; local models {local:,.1f} GPU-hours; "
                  f"API {format_usd(run['usd'])}")
