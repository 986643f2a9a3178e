"""What one SLURM job runs: one part of a study (runner/grid.py), with the same code as a local
run (`run_part`, runner/study.py, handed in by the driver), then its exit status written beside
its log. A part that fails exits the job with the skillmix exit status (errors.py), so SLURM
marks it FAILED, jobs waiting on it with `afterok` are cancelled, and the driver reports it.

The job is `Checkpointable` (submitit): when SLURM signals a time limit or a pre-emption
(USR2, 90 s ahead), submitit requeues the same job, which runs its part again; the part
resumes from its done-markers, its records and the training's last checkpoint.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from submitit.helpers import Checkpointable, DelayedSubmission

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.folder_lock import HELD_ENV
from skillmix_utils.runner.slurm.book import status_path


@dataclass
class PartJob(Checkpointable):
    """`run_part(config_path, part, stages, overrides, force, notebooks_dir)` in a job."""
    run_part: Callable
    config_path: str
    part: str
    stages: list | None
    overrides: dict
    force: bool
    notebooks_dir: str | None
    study_out: str           # the driver holds this folder's lock: its jobs work under it
    folder: str              # where the status file goes (cluster/<part>/)

    def __call__(self) -> int:
        if int(os.environ.get("SLURM_PROCID") or 0) != 0:
            # The other nodes of a multi-node job: the study runs on the first; training starts
            # its processes on every node itself (stages/train/nodes.py).
            return 0
        held = os.environ.get(HELD_ENV, "")
        os.environ[HELD_ENV] = os.pathsep.join(p for p in (held, self.study_out) if p)
        start = time.time()
        try:
            rc = self.run_part(self.config_path, self.part, stages=self.stages,
                               overrides=self.overrides, force=self.force,
                               notebooks_dir=self.notebooks_dir)
        except SkillmixError as err:
            print(f"skillmix: error: {err}", file=sys.stderr, flush=True)
            rc = err.exit_status
        job_id = os.environ.get("SLURM_JOB_ID", "local")
        status_path(Path(self.folder), job_id).write_text(json.dumps(
            {"status": rc, "part": self.part, "job_id": job_id, "seconds": round(time.time() - start, 1),
             "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
        if rc:
            sys.stdout.flush()
            sys.exit(rc)
        return 0

    def checkpoint(self, *args, **kwargs) -> DelayedSubmission:
        """The requeued job runs its part again, without --force, so that it resumes."""
        return DelayedSubmission(replace(self, force=False))
