"""`skillmix run CONFIG --executor slurm` (or `cluster: {executor: slurm}`): each part of a study
one SLURM job, submitted through submitit, watched from here (README "On a cluster").

    cluster:
      executor: slurm
      partition: gpu
      account: my-lab
      gpus_per_node: 4          # GPUs a node has; a run asks for what its training needs
      cpus_per_task: 16
      mem_gb: 200
      time_min: 720
      max_parallel: 4           # grid runs in flight at once (0: all)
      slurm_extra: {mail-type: END}

The parts: `jobs.py` (which jobs, their sbatch options and dependencies), `job.py` (what a job
runs), `book.py` (job ids and logs under `outputs/<study>/cluster/`), `queue.py` (squeue and
scontrol), `driver.py` (submit or re-attach, watch, the exit status and the grid summary).
"""
from __future__ import annotations

from skillmix_utils.runner.slurm.driver import print_jobs, run_on_slurm

__all__ = ["print_jobs", "run_on_slurm"]
