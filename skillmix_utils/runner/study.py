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
from skillmix_utils.runner.grid import grid_points, link_shared_data, link_study_ledger
from skillmix_utils.runner.markers import (
    KERNEL,
    SHARED_PREFIXES,
    STAGE_SECTION,
    Stage,
    disabled,
    discover,
    fingerprints,
    marker_path,
    status,
)
from skillmix_utils.runner.notebook_config import notebook_config
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
            dry_run_costs(cfg, st, costs)
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
              force: bool = False, notebooks_dir=None) -> int:
    """Execute the numbered notebooks for a study config; returns the exit status (0 ok, else
    the status of the first notebook's error: errors.py). Bad config, overrides, paths, pools,
    keys or adapters raise SkillmixError before anything runs or is written; a folder in use by
    another run raises FolderInUse (status 5).

    Example: ``run_study("configs/demo.yaml", stages=["04", "05"])``.
    """

    cfg = notebook_config(str(Path(config_path).resolve()), dict(overrides or {}))
    wanted = {str(s).zfill(2)[:2] for s in stages} if stages else set(STAGE_SECTION)
    sections = [STAGE_SECTION[s] for s in sorted(wanted) if s in STAGE_SECTION]
    runs = [cfg]
    for label, point in grid_points(cfg.grid) if cfg.grid else []:
        try:
            runs.append(notebook_config(str(Path(config_path).resolve()),
                                        {**(overrides or {}), "grid": {}, **point}))
        except SkillmixError as exc:
            raise SkillmixError(f"grid run {label}: {exc}", field="grid") from None
    for c in runs:
        enabled = [s for s in sections if getattr(c, s) is not None and getattr(c, s).enabled]
        check_study(c, config_path, enabled, keys=not dry_run)
    if dry_run:
        return _run_study(config_path, stages, dry_run, overrides, force, notebooks_dir)
    with output_lock(cfg.out, command=f"skillmix run {config_path}"):
        return _run_study(config_path, stages, dry_run, overrides, force, notebooks_dir)


def _run_study(config_path, stages=None, dry_run: bool = False, overrides: dict | None = None,
               force: bool = False, notebooks_dir=None) -> int:
    """run_study's work, once its checks passed and its lock is held."""
    config_path = Path(config_path).resolve()
    overrides = dict(overrides or {})
    cfg = notebook_config(str(config_path), overrides)          # validates; raises SkillmixError
    all_stages = discover(notebooks_dir)
    wanted = None
    if stages:
        wanted = {str(s).zfill(2)[:2] for s in stages}
        unknown = wanted - {s.id for s in all_stages}
        if unknown:
            known = ", ".join(s.id for s in all_stages)
            raise SkillmixError(f"no notebook numbered {', '.join(sorted(unknown))} (have {known})",
                                field="--stages")
    out = cfg.out
    print(f"skillmix run: study {cfg.name!r} -> {out}{' (dry run)' if dry_run else ''}", flush=True)

    if not cfg.grid:
        if not dry_run:
            write_resolved_config(cfg)
        total = len([s for s in all_stages if wanted is None or s.id in wanted])
        costs = DryRunTotal()
        rc = _run_list("", cfg, config_path, overrides, all_stages, wanted, dry_run, force, [0], total, costs)
        if dry_run:
            print_total(costs)
        return rc

    points = grid_points(cfg.grid)
    shared = not any(k.strip().startswith(SHARED_PREFIXES) for key in cfg.grid for k in key.split(","))
    base_over = {**overrides, "grid": {}}
    runs = []
    for label, point in points:
        run_over = {**base_over, **point, "output_dir": str(out / "grid" / label)}
        try:
            runs.append((label, run_over, notebook_config(str(config_path), run_over)))
        except SkillmixError as exc:
            raise SkillmixError(f"grid run {label}: {exc}", field="grid") from None
    front = [s for s in all_stages if s.id in ("01", "02")] if shared else []
    rest = [s for s in all_stages if s not in front]
    count = lambda sts: len([s for s in sts if wanted is None or s.id in wanted])
    total = count(front) + count(rest) * len(runs)
    print(f"grid: {len(runs)} runs ({', '.join(l for l, _, _ in runs)})"
          f"{'; notebooks 01-02 shared' if front else ''}", flush=True)
    counter, costs = [0], DryRunTotal()
    if front:
        top = notebook_config(str(config_path), {**base_over, "output_dir": str(out)})
        if not dry_run:
            write_resolved_config(top)
        rc = _run_list("shared", top, config_path, {**base_over, "output_dir": str(out)}, front,
                       wanted, dry_run, force, counter, total, costs)
        if rc:
            return rc
    for label, run_over, run_cfg in runs:
        if not dry_run:
            if front:
                link_shared_data(out, run_cfg.out)
            link_study_ledger(out, run_cfg.out)     # budget_usd caps the grid, not each run
            write_resolved_config(run_cfg)
        # The shared stages' fingerprints feed the later ones, so that new data re-runs them.
        stages_here = front + rest if front else rest
        fps_wanted = wanted if wanted is not None else {s.id for s in rest}
        rc = _run_list(label, run_cfg, config_path, run_over, stages_here,
                       {s for s in fps_wanted if s in {r.id for r in rest}}, dry_run, force, counter, total,
                       costs)
        if rc:
            return rc
    if dry_run:
        print_total(costs, grid=True)
    else:
        # heavy: the summary draws figures (matplotlib, seaborn, scipy), only at a grid's end
        from skillmix_utils.present.grid_summary import summarize_grid

        written = summarize_grid(out, [(label, c) for label, _, c in runs])
        if written:
            print(f"grid summary: {out / 'grid' / 'metrics.csv'}, tables in {out / 'tables'}", flush=True)
    return 0
