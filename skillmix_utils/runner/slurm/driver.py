"""The driver of `skillmix run CONFIG --executor slurm`: submits the study's jobs (jobs.py),
watches them, and ends as a local run would.

- A part whose notebooks are all up to date (their done-markers match) gets no job; a part
  whose job is still queued or running is re-attached (its id is in cluster/jobs.json); any
  other part is submitted, again if its last job failed or was killed (it resumes: done
  notebooks are skipped, stages resume from their records, training from its last checkpoint).
- Progress: a line when a job changes state (queued, running on a node, done, failed), the
  notebook lines its log gains ("[2/3] 04_evaluation: running ..."), and every
  SKILLMIX_PROGRESS_EVERY seconds (default 60) a count of queued / running / done / failed.
  The queue is read every SKILLMIX_SLURM_POLL seconds (default 15).
- Ctrl-C detaches: the jobs keep running and the command exits 130 saying how to re-attach.
- The end: the grid summary when every run is done (exit 0), else the exit status of the first
  failed part, with its job id, its error line and its log.
- The study's folder lock is held while the driver runs: one driver per study.
"""
from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Callable

from skillmix_utils.core.errors import EXIT_INTERRUPTED, SkillmixError
from skillmix_utils.core.folder_lock import output_lock
from skillmix_utils.runner.grid import SHARED, StudyLayout, write_grid_summary
from skillmix_utils.runner.markers import disabled, discover, fingerprints, status, wanted_stages
from skillmix_utils.runner.slurm import queue
from skillmix_utils.runner.slurm.book import JobBook
from skillmix_utils.runner.slurm.job import PartJob
from skillmix_utils.runner.slurm.jobs import JobPlan, plan_jobs, sbatch_options

_NOTEBOOK_LINE = re.compile(r"^\[\d+/\d+\].*")
_ERROR_LINE = re.compile(r"^skillmix: error: .*")


def _every(name: str, default: float) -> float:
    try:
        return max(0.2, float(os.environ.get(name, default)))
    except ValueError:
        return default


def up_to_date(job: JobPlan, layout: StudyLayout, all_stages, force: bool) -> bool:
    """Whether every notebook of the job is done for the config as it is now (no job needed)."""
    if force:
        return False
    stages_here, _ = layout.part_stages(job.part, all_stages, None)
    fps = fingerprints(job.cfg, stages_here)
    return all(disabled(job.cfg, st) or status(job.cfg, st, fps[st.id]) is None
               for st in stages_here if st.id in job.stages)


def print_jobs(layout: StudyLayout, stages=None, notebooks_dir=None) -> None:
    """`--dry-run --executor slurm`: the jobs it would submit, with their sbatch options."""
    all_stages = discover(notebooks_dir)
    jobs = plan_jobs(layout, all_stages, wanted_stages(stages, all_stages))
    book = JobBook(layout.cfg.out)
    print(f"slurm: {len(jobs)} job{'s' * (len(jobs) != 1)} (logs in {book.root}/<part>/):")
    for job in jobs:
        note = " (up to date: no job)" if up_to_date(job, layout, all_stages, False) else ""
        dep = f"afterok:<{job.after} job>" if job.after else None
        print(f"  {job.what}: notebooks {' '.join(job.stages)}{note}\n"
              f"    sbatch {' '.join(sbatch_options(job.params, dep))}")


class _Watch:
    """The jobs in flight, the lines already shown, and the outcome of each part."""

    def __init__(self, book: JobBook):
        self.book = book
        self.live: dict[str, str] = {}          # part -> job id, still queued or running
        self.shown: dict[str, str] = {}         # part -> last state line shown
        self.log_seen: dict[str, int] = {}      # part -> log lines already read
        self.failed: list[tuple[str, str, int, str]] = []   # (part, job id, status, message)
        self.done: list[str] = []

    def say(self, part: str, text: str) -> None:
        if self.shown.get(part) != text:
            self.shown[part] = text
            print(f"[slurm] {part} (job {self.live.get(part) or self.book.job_id(part)}): {text}",
                  flush=True)

    def follow_log(self, part: str, job_id: str) -> None:
        """Print the notebook lines the job's log gained since last time."""
        log = self.book.log(part, job_id)
        try:
            lines = log.read_text(errors="replace").splitlines()
        except OSError:
            return
        for line in lines[self.log_seen.get(part, 0):]:
            if _NOTEBOOK_LINE.match(line):
                print(f"[slurm] {part}: {line}", flush=True)
        self.log_seen[part] = len(lines)

    def finish(self, part: str, job_id: str, state: queue.JobState) -> None:
        """A job left the queue: done, or failed with its status, error line and log."""
        self.follow_log(part, job_id)
        self.live.pop(part, None)
        written = self.book.status(part, job_id)
        log = self.book.log(part, job_id)
        if written is not None and written.get("status") == 0:
            self.done.append(part)
            self.say(part, f"done in {_duration(written.get('seconds', 0))}")
            return
        if written is not None:
            rc, why = int(written["status"]), f"failed with exit status {written['status']}"
        else:
            rc = 1
            why = (f"ended without finishing (SLURM state {state.state}"
                   f"{', ' + state.reason if state.reason and state.reason != 'None' else ''}); "
                   "run the same command again to resubmit it: it resumes from its last checkpoint")
        error = _last_error(log)
        message = f"job {job_id} ({part}) {why}{': ' + error if error else ''}; log: {log}"
        self.failed.append((part, job_id, rc, message))
        self.say(part, f"failed (exit status {rc}); log: {log}")


def _last_error(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    errors = [m.group(0) for m in map(_ERROR_LINE.match, lines) if m]
    return errors[-1].removeprefix("skillmix: error: ") if errors else ""


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _executor(folder: Path, params: dict):
    """A submitit SlurmExecutor writing into `folder` with these sbatch options."""
    import submitit

    ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=3)
    ex.update_parameters(**params)
    return ex


def run_on_slurm(layout: StudyLayout, stages, force: bool, notebooks_dir,
                 run_part: Callable) -> int:
    """Submit the study's jobs (or re-attach to them), watch them to the end, write the grid
    summary; returns the exit status as a local run would (130 when detached by Ctrl-C)."""
    queue.require_slurm()
    all_stages = discover(notebooks_dir)
    jobs = plan_jobs(layout, all_stages, wanted_stages(stages, all_stages))
    out = layout.cfg.out
    with output_lock(out, command=f"skillmix run {layout.config_path} --executor slurm"):
        book = JobBook(out)
        watch = _Watch(book)
        print(f"skillmix run: study {layout.cfg.name!r} -> {out} on SLURM: {len(jobs)} "
              f"job{'s' * (len(jobs) != 1)}, logs in {book.root}", flush=True)
        try:
            _submit_or_attach(layout, jobs, book, watch, all_stages, stages, force, notebooks_dir,
                              run_part)
            _watch(watch)
        except KeyboardInterrupt:
            ids = " ".join(watch.live.values())
            print(f"\nskillmix: detached; {len(watch.live)} job(s) keep running ({ids or 'none'}). "
                  f"Run the same command again to re-attach, or `scancel {ids}` to stop them.",
                  file=sys.stderr, flush=True)
            return EXIT_INTERRUPTED
        if watch.failed:
            for *_, message in watch.failed:
                print(f"skillmix: error: {message}", file=sys.stderr, flush=True)
            return watch.failed[0][2]
        if layout.runs:
            write_grid_summary(layout)
        print(f"[slurm] all {len(jobs)} part(s) done", flush=True)
        return 0


def _submit_or_attach(layout, jobs, book, watch, all_stages, stages, force, notebooks_dir,
                      run_part) -> None:
    """Each job: up to date (none), in flight (re-attached) or submitted now."""
    known = queue.states([i for i in (book.job_id(j.part) for j in jobs) if i])
    submitted: list[str] = []          # ids of grid runs in this order (max_parallel chains them)
    limit = layout.cfg.cluster.max_parallel
    for job in jobs:
        old = book.job_id(job.part)
        if old and known.get(old) and known[old].in_flight:
            watch.live[job.part] = old
            watch.say(job.part, f"re-attached ({known[old].state.lower()})")
            if job.part != SHARED:
                submitted.append(old)
            continue
        if up_to_date(job, layout, all_stages, force):
            watch.done.append(job.part)
            print(f"[slurm] {job.part}: up to date, no job (--force re-runs it)", flush=True)
            continue
        deps = []
        if job.after and job.after in watch.live:
            deps.append(f"afterok:{watch.live[job.after]}")
        if limit and job.part != SHARED and len(submitted) >= limit:
            deps.append(f"afterany:{submitted[-limit]}")
        dependency = ",".join(deps) or None
        params = dict(job.params)
        if dependency:
            params["dependency"] = dependency
            # A job whose shared stage failed can never start: SLURM cancels it.
            params["additional_parameters"] = {**params.get("additional_parameters", {}),
                                               "kill-on-invalid-dep": "yes"}
        folder = book.folder(job.part)
        task = PartJob(run_part, str(layout.config_path), job.part, list(stages) if stages else None,
                       layout.overrides, force, str(notebooks_dir) if notebooks_dir else None,
                       str(layout.cfg.out), str(folder))
        try:
            new = _executor(folder, params).submit(task).job_id
        except Exception as exc:   # sbatch refused: bad partition, account, limits, ...
            raise SkillmixError(f"sbatch refused the job of {job.what}: "
                                f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}",
                                field="cluster") from None
        book.record(job.part, new, dependency)
        watch.live[job.part] = new
        again = f"; its job {old} did not finish" if old else ""
        watch.say(job.part, f"submitted{' (' + dependency + ')' if dependency else ''}{again}")
        if job.part != SHARED:
            submitted.append(new)


def _watch(watch: _Watch) -> None:
    """Poll the queue until no job is in flight, printing what changes."""
    poll, every = _every("SKILLMIX_SLURM_POLL", 15), _every("SKILLMIX_PROGRESS_EVERY", 60)
    last_count = time.monotonic()
    while watch.live:
        try:
            now = queue.queued(watch.live.values())
        except SkillmixError as exc:      # slurmctld busy or restarting: the jobs go on
            print(f"[slurm] {exc.reason}; asking again in {poll:g} s", flush=True)
            time.sleep(poll)
            continue
        for part, job_id in list(watch.live.items()):
            st = now.get(job_id)
            if st is None:
                watch.finish(part, job_id, queue.ended(job_id))
                continue
            if st.state == "PENDING":
                watch.say(part, f"queued ({st.reason or 'waiting'})")
            else:
                watch.say(part, f"{st.state.lower()}{' on ' + st.nodes if st.nodes else ''}")
            watch.follow_log(part, job_id)
        if time.monotonic() - last_count >= every and watch.live:
            last_count = time.monotonic()
            states = [now.get(j) for j in watch.live.values()]
            queued_n = sum(1 for s in states if s and s.state == "PENDING")
            print(f"[slurm] {queued_n} queued, {len(watch.live) - queued_n} running, "
                  f"{len(watch.done)} done, {len(watch.failed)} failed", flush=True)
        if watch.live:
            time.sleep(poll)
