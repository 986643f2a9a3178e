"""The `cluster:` section and the jobs it makes, without a cluster: each field overridable with
`--set cluster.FIELD=...`, the sbatch options a dry run prints, the nodes a run's training
needs, and a study that moves to SLURM keeps its finished notebooks."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from skillmix_utils.core.config import load_study_config
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.runner.grid import study_layout
from skillmix_utils.runner.markers import discover, fingerprints
from skillmix_utils.runner.slurm.jobs import job_resources, plan_jobs, sbatch_options

ROOT = Path(__file__).resolve().parents[2]


def test_every_cluster_field_can_be_set_from_the_command_line():
    cfg = load_study_config(ROOT / "configs" / "k4-addition.yaml", {
        "cluster.executor": "slurm", "cluster.partition": "gpu", "cluster.account": "lab",
        "cluster.qos": "high", "cluster.constraint": "a100", "cluster.gpus_per_node": 4,
        "cluster.cpus_per_task": 16, "cluster.mem_gb": 64, "cluster.time_min": 90,
        "cluster.max_parallel": 2, "cluster.slurm_extra.mail-type": "END"})
    c = cfg.cluster
    assert (c.executor, c.partition, c.account, c.qos, c.constraint) == ("slurm", "gpu", "lab", "high", "a100")
    assert (c.gpus_per_node, c.cpus_per_task, c.mem_gb, c.time_min, c.max_parallel) == (4, 16, 64, 90, 2)
    assert c.slurm_extra == {"mail-type": "END"}
    with pytest.raises(SkillmixError, match="cluster.executor"):
        load_study_config(ROOT / "configs" / "k4-addition.yaml", {"cluster.executor": "pbs"})
    with pytest.raises(SkillmixError, match="cluster.gpu_per_node"):
        load_study_config(ROOT / "configs" / "k4-addition.yaml", {"cluster.gpu_per_node": 4})


def test_the_cluster_section_is_not_part_of_a_stage_fingerprint():
    """Moving a finished study to SLURM (or changing its partition) re-runs nothing."""
    here = load_study_config(ROOT / "configs" / "ci.yaml")
    there = load_study_config(ROOT / "configs" / "ci.yaml", {"cluster.executor": "slurm",
                                                              "cluster.partition": "gpu"})
    assert fingerprints(here, discover()) == fingerprints(there, discover())


def _cfg(**train):
    return load_study_config(ROOT / "configs" / "paper-llama2-13b.yaml",
                             {f"train.{k}": v for k, v in train.items()} | {"grid": {}})


def test_a_run_asks_for_the_gpus_and_nodes_its_training_needs():
    cfg = _cfg(num_processes=16)
    cfg.cluster.gpus_per_node = 8
    p = job_resources(cfg.cluster, cfg, ["03", "04", "05"])
    assert (p["nodes"], p["gpus_per_node"], p["ntasks_per_node"]) == (2, 8, 1)
    cfg.cluster.gpus_per_node = None                 # default: all processes on one node
    assert job_resources(cfg.cluster, cfg, ["03"])["gpus_per_node"] == 16
    cfg.cluster.gpus_per_node = 0                    # CPU-only jobs
    assert "gpus_per_node" not in job_resources(cfg.cluster, cfg, ["03"])
    cfg.cluster.gpus_per_node = 8
    one = _cfg(num_processes=1, launcher="none", mode="qlora")
    one.cluster.gpus_per_node = 8
    assert (job_resources(one.cluster, one, ["03"])["nodes"],
            job_resources(one.cluster, one, ["03"])["gpus_per_node"]) == (1, 1)
    # Evaluation of a local 13B student: one GPU; data generation by an API teacher: none.
    assert job_resources(cfg.cluster, cfg, ["04"])["gpus_per_node"] == 1
    assert "gpus_per_node" not in job_resources(cfg.cluster, cfg, ["01", "02"])
    odd = _cfg(num_processes=9)
    odd.cluster.gpus_per_node = 8
    with pytest.raises(SkillmixError, match="does not split evenly"):
        job_resources(odd.cluster, odd, ["03"])


def test_a_grid_is_one_job_per_run_after_its_shared_data():
    layout = study_layout(ROOT / "configs" / "k4-addition.yaml", {"cluster.max_parallel": 1})
    jobs = plan_jobs(layout, discover(), None)
    assert [j.part for j in jobs] == ["shared", "data_mix=1-2-3_subsample=none",
                                      "data_mix=1-2-3_subsample=d123-plus-k4"]
    assert jobs[0].stages == ["01", "02"] and jobs[1].stages == ["03", "04", "05"]
    assert [j.after for j in jobs] == [None, "shared", "shared"]
    assert plan_jobs(layout, discover(), {"04"})[0].stages == ["04"]   # --stages 04: no shared job


def test_dry_run_prints_the_jobs_with_their_sbatch_options(tmp_path):
    cmd = [sys.executable, "-m", "skillmix_utils.cli", "run", str(ROOT / "configs" / "k4-addition.yaml"),
           "--dry-run", "--executor", "slurm", "--stages", "01", "--set", f"output_dir={tmp_path / 'o'}",
           "--set", "cluster.partition=gpu", "--set", "cluster.account=lab",
           "--set", "cluster.slurm_extra.mail-type=END"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "slurm: 1 job" in out and "shared notebooks: notebooks 01" in out
    assert "--partition=gpu" in out and "--account=lab" in out and "--mail-type=END" in out
    assert not (tmp_path / "o").exists()                 # a dry run writes nothing


def test_sbatch_options_of_a_dependent_job():
    assert sbatch_options({"job_name": "x", "nodes": 1, "stderr_to_stdout": True}, "afterok:7") == [
        "--job-name=x", "--nodes=1", "--dependency=afterok:7"]
