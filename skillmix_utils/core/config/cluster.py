"""The `cluster:` section: where `skillmix run` executes a study (here, or as SLURM jobs)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from skillmix_utils.core.config.fields import StrictModel


class ClusterSpec(StrictModel):
    """Where `skillmix run` executes a study: here (`local`), or each grid run as a SLURM job
    submitted through submitit (`slurm`; runner/slurm/, README "On a cluster"). Resources are
    per job; a job whose training needs more processes than `gpus_per_node` asks for several
    nodes (ceil(train.num_processes / gpus_per_node))."""
    executor: Literal["local", "slurm"] = "local"
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    # None: what the run needs (train.num_processes GPUs when it trains, 1 for a local model,
    # else none); 0: CPU-only jobs.
    gpus_per_node: int | None = Field(None, ge=0)
    cpus_per_task: int = Field(8, ge=1)
    mem_gb: float | None = Field(None, gt=0)           # None: the partition's default
    time_min: int = Field(1440, ge=1)                  # a job's time limit (minutes)
    max_parallel: int = Field(0, ge=0)                 # grid runs in flight at once (0: all)
    slurm_extra: dict[str, str | int | bool] = Field(default_factory=dict)   # more sbatch options
