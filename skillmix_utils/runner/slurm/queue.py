"""What the scheduler says about jobs: one `squeue` for those in the queue, `scontrol show job`
for one that left it (kept for MinJobAge, 300 s by default). No `sacct`: a cluster without
its accounting database (slurmdbd) has none, and the driver needs nothing it keeps."""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from skillmix_utils.core.errors import SkillmixError

# States of a job still in the queue (squeue's long names).
QUEUED = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED",
          "CONFIGURING", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED"}
RUNNING = {"RUNNING", "COMPLETING"}


@dataclass
class JobState:
    """A job as the scheduler reports it: `state` (PENDING, RUNNING, COMPLETED, FAILED,
    TIMEOUT, CANCELLED, PREEMPTED, NODE_FAIL, OUT_OF_MEMORY, ... or UNKNOWN once forgotten),
    the reason it waits, its nodes, and its exit code once ended."""
    state: str
    reason: str = ""
    nodes: str = ""
    exit_code: str = ""

    @property
    def in_flight(self) -> bool:
        return self.state in QUEUED or self.state in RUNNING


def require_slurm() -> None:
    """Raise SkillmixError unless this machine can submit SLURM jobs."""
    missing = [c for c in ("sbatch", "squeue", "scontrol") if shutil.which(c) is None]
    if missing:
        raise SkillmixError(f"executor slurm needs SLURM's commands on this machine (missing: "
                            f"{', '.join(missing)}); run on the cluster's login node, or use "
                            "--executor local", field="cluster.executor")


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def queued(job_ids) -> dict[str, JobState]:
    """The jobs among `job_ids` that are still in the queue, by id."""
    ids = {str(j) for j in job_ids}
    if not ids:
        return {}
    # All of this user's jobs, filtered here: `squeue -j` refuses a whole list for one id it
    # has forgotten.
    done = _run(["squeue", "--noheader", "--me", "--format", "%i|%T|%r|%N"])
    if done.returncode != 0:
        raise SkillmixError(f"squeue failed: {done.stderr.strip() or done.stdout.strip()}",
                            field="cluster")
    out = {}
    for line in done.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4 and parts[0] in ids:
            out[parts[0]] = JobState(parts[1], "" if parts[2] == "None" else parts[2], parts[3])
    return out


def ended(job_id) -> JobState:
    """A job that left the queue, from `scontrol show job` (UNKNOWN once SLURM forgot it)."""
    done = _run(["scontrol", "--oneliner", "show", "job", str(job_id)])
    if done.returncode != 0:
        return JobState("UNKNOWN")
    fields = dict(f.split("=", 1) for f in done.stdout.split() if "=" in f)
    return JobState(fields.get("JobState", "UNKNOWN"), fields.get("Reason", ""),
                    fields.get("NodeList", ""), fields.get("ExitCode", ""))


def states(job_ids) -> dict[str, JobState]:
    """Every job of `job_ids` by id: in the queue, or how it ended."""
    now = queued(job_ids)
    return {str(j): now.get(str(j)) or ended(j) for j in job_ids}
