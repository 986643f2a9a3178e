"""Multi-node training from SLURM's environment, checked on one machine: the command a job of
two nodes runs, and what accelerate makes of it on each node (its own parser and environment
code, as `accelerate launch` would run them)."""
from __future__ import annotations

import shlex
from pathlib import Path

from skillmix_utils.core.config import load_study_config
from skillmix_utils.stages.train.launch import launch_command

ROOT = Path(__file__).resolve().parents[2]
SLURM = {"SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_NODELIST": "gpu[07-08]", "SLURM_JOB_ID": "4242"}


def _cfg(tmp_path, **train):
    return load_study_config(ROOT / "configs" / "paper-llama2-13b.yaml",
                             {"grid": {}, "output_dir": str(tmp_path),
                              **{f"train.{k}": v for k, v in train.items()}})


def _accelerate_args(script: str, node: int):
    """The per-node `accelerate launch` arguments of the srun script, as node `node` runs them."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    argv = shlex.split(script.replace("$SLURM_NODEID", str(node)))
    assert argv[:4][1:] == ["-m", "accelerate.commands.launch", "--config_file"]
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(argv[3:]))
    return args


def test_two_nodes_run_one_process_group(tmp_path, monkeypatch):
    from accelerate.utils.launch import prepare_multi_gpu_env

    for k, v in SLURM.items():
        monkeypatch.setenv(k, v)
    cfg = _cfg(tmp_path, num_processes=16, launcher="fsdp")
    cmd = launch_command(cfg, tmp_path / "study_config.json", cuda=True)
    assert cmd[:6] == ["srun", "--overlap", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1",
                       "--kill-on-bad-exit=1"]
    assert cmd[6:8] == ["bash", "-c"] and cmd[8].startswith("exec ")
    for node in (0, 1):
        args = _accelerate_args(cmd[8].removeprefix("exec "), node)
        assert (args.num_processes, args.num_machines, args.machine_rank) == (16, 2, node)
        assert args.main_process_ip == "gpu07" and args.main_process_port == 20000 + 4242
        assert args.use_fsdp and args.module and args.training_script == "skillmix_utils.stages.train"
        prepare_multi_gpu_env(args)               # what torchrun is then given on this node
        assert (args.nproc_per_node, args.nnodes, args.node_rank) == ("8", "2", node)
        assert (args.master_addr, args.master_port) == ("gpu07", "24242")


def test_deepspeed_starts_torchrun_on_every_node(tmp_path, monkeypatch):
    for k, v in SLURM.items():
        monkeypatch.setenv(k, v)
    cmd = launch_command(_cfg(tmp_path, num_processes=16, launcher="deepspeed"),
                         tmp_path / "c.json", cuda=True)
    assert "--deepspeed_multinode_launcher standard" in cmd[-1]


def test_one_node_or_no_slurm_is_the_plain_launch(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_NUM_NODES", raising=False)
    monkeypatch.delenv("SLURM_NNODES", raising=False)
    cfg = _cfg(tmp_path, num_processes=4, launcher="fsdp")
    assert launch_command(cfg, tmp_path / "c.json", cuda=True)[1:3] == ["-m", "accelerate.commands.launch"]
    monkeypatch.setenv("SLURM_JOB_NUM_NODES", "1")
    assert launch_command(cfg, tmp_path / "c.json", cuda=True)[0] != "srun"


def test_only_the_first_node_of_a_job_runs_the_study(tmp_path, monkeypatch):
    """submitit starts the job's function once per node; the study itself runs once."""
    from skillmix_utils.runner.slurm.job import PartJob

    calls = []
    job = PartJob(lambda *a, **k: calls.append(a) or 0, "c.yaml", "shared", None, {}, False, None,
                  str(tmp_path), str(tmp_path))
    monkeypatch.setenv("SLURM_PROCID", "1")
    assert job() == 0 and calls == []
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    assert job() == 0 and len(calls) == 1
    assert (tmp_path / "77.status.json").exists()
