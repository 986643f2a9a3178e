"""`skillmix run --dry-run`: what every notebook's stage would ask, priced once per request across a grid."""
from __future__ import annotations

from dataclasses import dataclass, field

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.llm.cost import format_usd
from skillmix_utils.runner.markers import Stage
from skillmix_utils.stages import datagen, evaluate


@dataclass
class DryRunTotal:
    """What a dry run adds up over its stages: estimated dollars, whether some model has no
    price, and the reuse keys of the requests counted (`plan.Plan.seen`), shared by a grid's
    runs so that a request the response cache would answer is counted once."""
    usd: float = 0.0
    unpriced: bool = False
    seen: set = field(default_factory=set)


def stage_plan(cfg: StudyConfig, st: Stage, seen: set | None = None):
    """The dry-run plan (`plan.Plan`) of a stage that calls models (02, 04), else None."""
    if st.id == "02":
        return datagen.dry_run_plan(cfg, seen)
    if st.id == "04":
        return evaluate.dry_run_plan(cfg, seen=seen)
    return None


def dry_run_costs(cfg: StudyConfig, st: Stage, total: DryRunTotal) -> None:
    """Print a stage's own dry-run plan and add it to `total`."""
    try:
        plan = stage_plan(cfg, st, total.seen)
    except (ImportError, SkillmixError) as exc:
        print(f"    (no cost estimate: {exc})")
        return
    if plan is not None:
        print(plan.render())
        usd, unpriced = plan.total()
        total.usd += usd
        total.unpriced |= unpriced


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
