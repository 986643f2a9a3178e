"""Which SLURM jobs a study makes and what each asks for (sbatch options through submitit).

One job per part of the study (runner/grid.py): the whole study without a grid; with a grid,
the shared notebooks 01-02 (when the runs share them) and then one job per grid run, which
waits for the shared job through the scheduler (`--dependency=afterok:<id>`). With
`cluster.max_parallel: N`, run i also waits for run i - N to end (`afterany`), so at most N
runs are in flight whoever is watching.

A job's GPUs: a run that trains asks for `train.num_processes` GPUs, `gpus_per_node` (the
GPUs a node has) at most per node, on ceil(num_processes / gpus_per_node) nodes (a 70B full
fine-tune: 16 processes on 2 nodes of 8; stages/train/nodes.py starts one process group across
them); a run that only calls a local model asks for the GPUs its weights need (stages/compute.py);
one calling API models only asks for none. `gpus_per_node: 0` makes every job CPU-only.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from skillmix_utils.core.config import ClusterSpec, StudyConfig
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.runner.grid import SHARED, STUDY, StudyLayout
from skillmix_utils.runner.markers import STAGE_SECTION, Stage
from skillmix_utils.stages.compute import inference_compute, is_local
from skillmix_utils.stages.preflight import models_called

# submitit's own options, not sbatch's: left out when the job is printed as sbatch options.
NOT_SBATCH = {"stderr_to_stdout", "additional_parameters", "setup", "signal_delay_s", "use_srun"}


@dataclass
class JobPlan:
    """One job: the part it runs, its config, its notebooks, its sbatch options (submitit's
    names) and the part whose success it waits for."""
    part: str
    cfg: StudyConfig
    stages: list[str]
    params: dict
    after: str | None = None

    @property
    def what(self) -> str:
        return {STUDY: "the study", SHARED: "shared notebooks"}.get(self.part, f"grid run {self.part}")


def job_name(study: str, part: str) -> str:
    """The job's name in squeue.

    >>> job_name("k4-addition", "data_mix=1-2-3_subsample=none")
    'skillmix-k4-addition-data_mix=1-2-3_subsample=none'
    """
    return re.sub(r"[^A-Za-z0-9._=+-]+", "-", f"skillmix-{study}-{part}")[:120]


def _local_gpus(cfg: StudyConfig, stage_ids) -> int:
    """GPUs the local models of these stages need (1 each when a model cannot be sized offline)."""
    sections = [STAGE_SECTION[s] for s in stage_ids if s in STAGE_SECTION]
    need = 0
    for _, spec in models_called(cfg, sections):
        if is_local(spec.spec):
            try:
                need = max(need, inference_compute(spec.spec, 0, 0).gpus)
            except SkillmixError:
                need = max(need, 1)
    return need


def job_resources(cluster: ClusterSpec, cfg: StudyConfig, stage_ids) -> dict:
    """The sbatch options (submitit's names) of a job running these notebooks of `cfg`.

    >>> from skillmix_utils.core.config import StudyConfig
    >>> cfg = StudyConfig(name="x", train={"base_model": "m", "mode": "full", "launcher": "fsdp",
    ...                   "num_processes": 16}, cluster={"gpus_per_node": 8, "partition": "gpu"})
    >>> p = job_resources(cfg.cluster, cfg, ["03"]); p["nodes"], p["gpus_per_node"], p["partition"]
    (2, 8, 'gpu')
    """
    t = cfg.train
    trains = "03" in stage_ids and t is not None and t.enabled
    procs = t.num_processes if trains else 0
    per_node = cluster.gpus_per_node
    if per_node == 0:
        gpus, nodes = 0, 1
    elif trains:
        per_node = per_node or procs
        nodes = math.ceil(procs / per_node)
        if procs % nodes:
            raise SkillmixError(f"train.num_processes {procs} does not split evenly over {nodes} "
                                f"nodes of {per_node} GPUs", field="cluster.gpus_per_node")
        gpus = max(procs // nodes, _local_gpus(cfg, stage_ids) if nodes == 1 else 0)
    else:
        gpus, nodes = _local_gpus(cfg, stage_ids), 1
        if per_node:
            gpus = min(gpus, per_node)
    params = {"nodes": nodes, "ntasks_per_node": 1, "cpus_per_task": cluster.cpus_per_task,
              "time": cluster.time_min, "stderr_to_stdout": True}
    if gpus:
        params["gpus_per_node"] = gpus
    if cluster.mem_gb:
        params["mem"] = (f"{int(cluster.mem_gb)}GB" if cluster.mem_gb == int(cluster.mem_gb)
                         else f"{int(cluster.mem_gb * 1024)}MB")
    for name in ("partition", "account", "qos", "constraint"):
        if getattr(cluster, name):
            params[name] = getattr(cluster, name)
    if cluster.slurm_extra:
        params["additional_parameters"] = dict(cluster.slurm_extra)
    return params


def plan_jobs(layout: StudyLayout, all_stages: list[Stage], wanted: set[str] | None) -> list[JobPlan]:
    """The jobs of a study, in submission order; a part with no notebook to run makes none."""
    jobs = []
    for part in layout.parts():
        stages_here, run_wanted = layout.part_stages(part, all_stages, wanted)
        ids = [s.id for s in stages_here if run_wanted is None or s.id in run_wanted]
        if not ids:
            continue
        cfg, _ = layout.part_config(part)
        params = {"job_name": job_name(layout.cfg.name, part),
                  **job_resources(layout.cfg.cluster, cfg, ids)}
        after = SHARED if part not in (STUDY, SHARED) and any(j.part == SHARED for j in jobs) else None
        jobs.append(JobPlan(part, cfg, ids, params, after))
    return jobs


def sbatch_options(params: dict, dependency: str | None = None) -> list[str]:
    """The job's options as sbatch writes them.

    >>> sbatch_options({"nodes": 2, "gpus_per_node": 8, "stderr_to_stdout": True,
    ...                 "additional_parameters": {"mail-type": "END"}}, "afterok:17")
    ['--nodes=2', '--gpus-per-node=8', '--mail-type=END', '--dependency=afterok:17']
    """
    out = [f"--{k.replace('_', '-')}={v}" for k, v in params.items() if k not in NOT_SBATCH]
    out += [f"--{k}" if v is True else f"--{k}={v}"
            for k, v in params.get("additional_parameters", {}).items()]
    return out + ([f"--dependency={dependency}"] if dependency else [])
