"""`skillmix doctor`: is this machine ready to train and serve? One table, exit 1 on a FAIL.

    skillmix doctor [--model M] [--steps 3]                     versions and quick checks
    skillmix doctor --gpu [--model M] [--steps 3] [--out FILE]  the GPU acceptance run

Modules: `report` (a check's verdict, the table, the JSON), `cuda` (GPUs, torch build, driver
vs runtime, bf16, flash-attn, versions), `quick` (the plain doctor's checks), `gpu` (the
acceptance run), `trainer_runs` (the project's trainer in each mode against the CPU).
"""
from __future__ import annotations

from pathlib import Path

from skillmix_utils.doctor.cuda import versions
from skillmix_utils.doctor.gpu import run_gpu_checks
from skillmix_utils.doctor.quick import run_checks
from skillmix_utils.doctor.report import Check, exit_status, table, write_json

__all__ = ["main", "run_checks", "run_gpu_checks", "Check", "table", "versions"]

# Where `--gpu` writes its table as JSON unless told (beside the studies' outputs).
GPU_JSON = Path("outputs") / "doctor" / "doctor_gpu.json"


def main(model_name: str = "smollm2-135m-instruct", steps: int = 3, *, gpu: bool = False,
         out: str | Path | None = None, device: str | None = None) -> int:
    """Print the table (and, with `gpu`, write it as JSON to `out`); 1 if any check failed."""
    vers = versions()
    checks = (run_gpu_checks(model_name, steps, device=device) if gpu
              else run_checks(model_name, steps))
    print(table(vers, checks))
    skipped = [c.name for c in checks if c.status == "SKIP"]
    if skipped:
        print(f"skipped: {', '.join(skipped)} (see detail)")
    failed = [c.name for c in checks if c.status == "FAIL"]
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    if gpu or out:
        path = write_json(out or GPU_JSON, vers, checks, model=model_name, device=device)
        print(f"written: {path}")
    return exit_status(checks)
