"""Where a study's jobs are written down: `outputs/<study>/cluster/jobs.json` keeps each part's
job id (so that the same command, run again, re-attaches to jobs in flight), and each part's
folder `cluster/<part>/` holds submitit's files for its jobs: the sbatch script, the job's log
`<job id>_0_log.out` (stdout and stderr), and `<job id>.status.json`, the exit status the job
wrote when its part ended (a job the scheduler killed writes none)."""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "-", part)


class JobBook:
    """The jobs.json of a study's output folder, written again after every change."""

    def __init__(self, study_out: Path):
        self.root = Path(study_out) / "cluster"
        self.path = self.root / "jobs.json"
        try:
            self.jobs: dict[str, dict] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.jobs = {}

    def job_id(self, part: str) -> str | None:
        entry = self.jobs.get(part)
        return str(entry["job_id"]) if entry else None

    def record(self, part: str, job_id: str, dependency: str | None) -> None:
        """Write down a part's new job (the earlier ones stay in `history`)."""
        old = self.jobs.get(part)
        history = (old.get("history", []) + [old["job_id"]]) if old else []
        self.jobs[part] = {"job_id": str(job_id), "submitted": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                           "dependency": dependency, "history": history}
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.jobs, indent=2))
        os.replace(tmp, self.path)

    def folder(self, part: str) -> Path:
        """submitit's folder for this part's jobs."""
        return self.root / _safe(part)

    def log(self, part: str, job_id: str) -> Path:
        return self.folder(part) / f"{job_id}_0_log.out"

    def status(self, part: str, job_id: str) -> dict | None:
        """What the job wrote when its part ended ({"status": N, ...}), or None."""
        try:
            return json.loads(status_path(self.folder(part), job_id).read_text())
        except (OSError, ValueError):
            return None


def status_path(folder: Path, job_id: str) -> Path:
    return Path(folder) / f"{job_id}.status.json"
