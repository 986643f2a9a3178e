"""`skillmix run`: the notebooks of a study (or of each grid run) executed in order through papermill."""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

from skillmix_utils.core.config import StudyConfig, write_resolved_config
from skillmix_utils.core.errors import SkillmixError, exit_status_of
from skillmix_utils.core.folder_lock import output_lock
from skillmix_utils.runner.dry_run import DryRunTotal, dry_run_costs, print_total, quiet_estimate
from skillmix_utils.runner.grid import (
    SHARED,
    STUDY,
    StudyLayout,
    link_shared_data,
    link_study_ledger,
    study_layout,
    write_grid_summary,
)
from skillmix_utils.runner.markers import (
    KERNEL,
    STAGE_SECTION,
    Stage,
    disabled,
    discover,
    fingerprints,
    marker_path,
    status,
    wanted_stages,
)
from skillmix_utils.runner.slurm import print_jobs, run_on_slurm
from skillmix_utils.stages.preflight import check_study
from skillmix_utils.stages.progress import watch_file


def _first_line(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text or "")).strip()
    return text.splitlines()[0] if text else ""


class StageFailure(str):
    """A notebook's one-line error, with the exit status of the skillmix error it raised
    (errors.py: 1 failed items, 3 budget, 4 refused key, ...; 1 for any other error)."""

    def __new__(cls, text: str, status: int | None = None):
        obj = super().__new__(cls, text)
        obj.status = status or 1
        return obj


def execute(st: Stage, cfg: StudyConfig, config_path: Path, overrides: dict, fingerprint: str,
            progress: str, estimate_usd: float | None = None) -> str | None:
    """Run one notebook into `<out>/notebooks/`; writes the done marker on success.
    Returns None on success, else a one-line error."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    target = cfg.out / "notebooks" / st.path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    marker = marker_path(cfg.out, st)
    marker.unlink(missing_ok=True)
    params = {"config_path": str(config_path), "output_dir": str(cfg.out),
              "overrides": json.dumps({k: v for k, v in overrides.items() if k != "output_dir"})}
    start = time.time()

    try:
        # The stage inside the notebook writes .runner/progress.json; it is drawn here as it
        # moves (bars on a TTY, a line every SKILLMIX_PROGRESS_EVERY seconds otherwise).
        with watch_file(cfg.out / ".runner" / "progress.json", st.id) as watch:
            pm.execute_notebook(str(st.path), str(target), parameters=params, kernel_name=KERNEL,
                                cwd=str(Path.cwd()), progress_bar=False, log_output=False,
                                # The kernel's own start-up chatter (a TCP warning) is noise here.
                                extra_arguments=["--IPKernelApp.log_level=ERROR"])
    except PapermillExecutionError as err:
        return StageFailure(
            f"notebook {st.path.name} failed in cell {err.exec_count or err.cell_index}: "
            f"{err.ename}: {_first_line(err.evalue)} (executed copy with the error: {target})",
            exit_status_of(err.ename))
    except Exception as err:  # kernel died, could not start, ...
        return f"notebook {st.path.name} failed: {err.__class__.__name__}: {_first_line(str(err))} ({target})"
    seconds = time.time() - start
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"stage": st.id, "notebook": st.path.name, "fingerprint": fingerprint,
                                  "seconds": round(seconds, 1), "executed": str(target),
                                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=2))
    spent = (f"; API cost ${watch.spent_usd:.4f}" + (f" (estimated at most ${estimate_usd:.2f})"
                                                     if estimate_usd else "")) \
        if (watch.spent_usd or estimate_usd) else ""
    print(f"{progress} {st.name}: done in {_duration(seconds)}{spent}", flush=True)
    return None


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def _run_list(label: str, cfg: StudyConfig, config_path: Path, overrides: dict, stages: list[Stage],
              wanted: set[str] | None, dry_run: bool, force: bool, counter: list[int], total: int,
              costs: DryRunTotal) -> int:
    fps = fingerprints(cfg, stages)
    for st in stages:
        if wanted is not None and st.id not in wanted:
            continue
        counter[0] += 1
        progress = f"[{counter[0]}/{total}]{' ' + label if label else ''}"
        off = disabled(cfg, st)
        if off:
            print(f"{progress} {st.name}: skipped ({off})", flush=True)
            continue
        reason = "forced" if force else status(cfg, st, fps[st.id])
        if reason is None:
            print(f"{progress} {st.name}: up to date, skipped (--force re-runs it)", flush=True)
            continue
        if dry_run:
            print(f"{progress} {st.name}: would run ({reason}) -> {cfg.out / 'notebooks' / st.path.name}")
            dry_run_costs(cfg, st, costs, label)
            continue
        estimate = quiet_estimate(cfg, st)
        note = f"; estimated API cost at most ${estimate:,.2f}" if estimate else ""
        print(f"{progress} {st.name}: running ({reason}{note}) ...", flush=True)
        error = execute(st, cfg, config_path, overrides, fps[st.id], progress, estimate)
        if error:
            print(f"skillmix: error: {error}", file=sys.stderr, flush=True)
            return getattr(error, "status", 1)
    return 0


def run_study(config_path, stages=None, dry_run: bool = False, overrides: dict | None = None,
              force: bool = False, notebooks_dir=None, executor: str | None = None) -> int:
    """Execute the numbered notebooks for a study config; returns the exit status (0 ok, else
    the status of the first notebook's error: errors.py). Bad config, overrides, paths, pools,
    keys or adapters raise SkillmixError before anything runs or is written; a folder in use by
    another run raises FolderInUse (status 5). `executor` ("local" or "slurm"; default the
    config's `cluster.executor`) says where: here, or each grid run as a SLURM job
    (runner/slurm/).

    Example: ``run_study("configs/demo.yaml", stages=["04", "05"])``.
    """
    layout = study_layout(config_path, overrides)
    cfg = layout.cfg
    wanted = {str(s).zfill(2)[:2] for s in stages} if stages else set(STAGE_SECTION)
    sections = [STAGE_SECTION[s] for s in sorted(wanted) if s in STAGE_SECTION]
    for c in [cfg] + [r.cfg for r in layout.runs]:
        enabled = [s for s in sections if getattr(c, s) is not None and getattr(c, s).enabled]
        check_study(c, config_path, enabled, keys=not dry_run)
    slurm = (executor or cfg.cluster.executor) == "slurm"
    if slurm and not dry_run:
        # Each job runs its part with run_part (passed, not imported there: the jobs' module
        # sits below this one).
        return run_on_slurm(layout, stages, force, notebooks_dir, run_part=run_part)
    if dry_run:
        if slurm:
            print_jobs(layout, stages, notebooks_dir)
        return _run_study(config_path, stages, dry_run, overrides, force, notebooks_dir)
    with output_lock(cfg.out, command=f"skillmix run {config_path}"):
        return _run_study(config_path, stages, dry_run, overrides, force, notebooks_dir)


def _run_part(layout: StudyLayout, part: str, all_stages: list[Stage], wanted: set[str] | None,
              dry_run: bool, force: bool, counter: list[int], total: int, costs: DryRunTotal) -> int:
    """Run one part (the study, the shared notebooks, or one grid run) in order."""
    cfg, over = layout.part_config(part)
    if not dry_run:
        if part not in (STUDY, SHARED):
            if layout.shared:
                link_shared_data(layout.cfg.out, cfg.out)
            link_study_ledger(layout.cfg.out, cfg.out)     # budget_usd caps the grid, not each run
        write_resolved_config(cfg)
    stages_here, run_wanted = layout.part_stages(part, all_stages, wanted)
    label = "" if part == STUDY else part
    return _run_list(label, cfg, layout.config_path, over, stages_here, run_wanted, dry_run, force,
                     counter, total, costs)


def run_part(config_path, part: str, stages=None, overrides: dict | None = None,
             force: bool = False, notebooks_dir=None) -> int:
    """Run one part of a study here (what a SLURM job does: runner/slurm/job.py): `study`,
    `shared` or a grid run's label. The caller holds the study's folder lock. Returns the exit
    status, as run_study."""
    layout = study_layout(config_path, overrides)
    all_stages = discover(notebooks_dir)
    wanted = wanted_stages(stages, all_stages)
    stages_here, run_wanted = layout.part_stages(part, all_stages, wanted)
    own = [s for s in stages_here if run_wanted is None or s.id in run_wanted]
    print(f"skillmix run: study {layout.cfg.name!r}, part {part} -> {layout.part_config(part)[0].out}",
          flush=True)
    return _run_part(layout, part, all_stages, wanted, False, force, [0], len(own), DryRunTotal())


def _run_study(config_path, stages=None, dry_run: bool = False, overrides: dict | None = None,
               force: bool = False, notebooks_dir=None) -> int:
    """run_study's work, once its checks passed and its lock is held."""
    layout = study_layout(config_path, overrides)          # validates; raises SkillmixError
    all_stages = discover(notebooks_dir)
    wanted = wanted_stages(stages, all_stages)
    out = layout.cfg.out
    print(f"skillmix run: study {layout.cfg.name!r} -> {out}{' (dry run)' if dry_run else ''}", flush=True)
    count = lambda sts: len([s for s in sts if wanted is None or s.id in wanted])
    front, rest = layout.split(all_stages)
    total = count(front) + count(rest) * max(1, len(layout.runs))
    if layout.runs:
        print(f"grid: {len(layout.runs)} runs ({', '.join(r.label for r in layout.runs)})"
              f"{'; notebooks 01-02 shared' if front else ''}", flush=True)
    counter, costs = [0], DryRunTotal()
    for part in layout.parts():
        rc = _run_part(layout, part, all_stages, wanted, dry_run, force, counter, total, costs)
        if rc:
            return rc
    if dry_run:
        print_total(costs, grid=bool(layout.runs))
    elif layout.runs:
        write_grid_summary(layout)
    return 0
