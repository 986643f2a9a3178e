"""Start training as a subprocess: `accelerate launch` for several processes, python -m for one.

    cmd = launch_command(cfg, Path("outputs/demo/train/lora-k1-2/study_config.json"))
    # GPU: [python, -m, accelerate.commands.launch, --config_file, .../ddp.yaml,
    #       --num_processes, 4, --main_process_port, P, -m, skillmix_utils.stages.train, --config, ...]
    # CPU: [python, -m, torch.distributed.run, --nproc_per_node, 2, ..., -m, skillmix_utils.stages.train, ...]

Training never runs inside a notebook kernel: CUDA, NCCL and the process group belong to a
process that exits when training ends. The resolved StudyConfig is written as JSON beside the
run so the launched processes read exactly what the caller validated. Accelerate configs live in
skillmix_utils/data/accelerate/: ddp, fsdp (full shard, for full fine-tuning of 13B on
4 x 80 GB), deepspeed_zero3, and cpu_gloo.

Without CUDA, processes are started with torchrun on the gloo backend (`accelerate launch
--cpu` would need mpirun for more than one CPU process; cpu_gloo.yaml is for users who launch
through mpirun). `accelerate launch` would also silently turn FSDP and DeepSpeed into plain DDP
on a CPU, so for those two launchers each process gets the environment that `accelerate launch`
derives from the same yaml (`accelerate_env`, computed by accelerate's own launcher code) and
the trainer keeps accelerate on its FSDP / DeepSpeed path (trainer.make_accelerator): the CPU
runs the sharding code that 4-GPU users depend on, and the tests check it.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from importlib import resources
from pathlib import Path

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.provenance import CHECKOUT
from skillmix_utils.llm.models import resolve_model
from skillmix_utils.stages.train.nodes import across_nodes
from skillmix_utils.stages.train.run import run_dir

CONFIGS = {"ddp": "ddp.yaml", "fsdp": "fsdp.yaml", "deepspeed": "deepspeed_zero3.yaml",
           "cpu": "cpu_gloo.yaml"}


def accelerate_config(launcher: str, cuda: bool | None = None) -> Path:
    """The accelerate YAML for a launcher; without CUDA every launcher becomes cpu_gloo."""
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    name = CONFIGS["cpu"] if not cuda else CONFIGS.get(launcher, CONFIGS["ddp"])
    return Path(str(resources.files("skillmix_utils").joinpath(f"data/accelerate/{name}")))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config_json(cfg: StudyConfig, run_root: Path) -> Path:
    """The validated config, as the launched processes will read it."""
    run_root.mkdir(parents=True, exist_ok=True)
    path = run_root / "study_config.json"
    path.write_text(cfg.model_dump_json(indent=1))
    return path


def accelerate_env(launcher: str, num_processes: int, *, cuda: bool | None = None,
                   port: int | None = None) -> dict[str, str]:
    """The variables `accelerate launch --config_file <launcher's yaml>` sets for each process.

    Computed by accelerate's own launcher code (prepare_multi_gpu_env / prepare_deepspeed_cmd_env),
    so they follow the yaml exactly; only the entries that differ from os.environ are returned.
    On a CPU mixed precision is off (bf16 autocast on a CPU would change the numbers the tests
    compare with a single process).
    """
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    name = CONFIGS.get(launcher, CONFIGS["ddp"])
    yaml_path = Path(str(resources.files("skillmix_utils").joinpath(f"data/accelerate/{name}")))
    argv = ["--config_file", str(yaml_path), "--num_processes", str(num_processes),
            "--main_process_port", str(port or _free_port()), "-m", "skillmix_utils.stages.train"]
    args, defaults, mp_from_flag = _validate_launch_command(launch_command_parser().parse_args(argv))
    if args.use_deepspeed:
        fields = list(defaults.deepspeed_config) + (["mixed_precision"] if mp_from_flag else [])
        args.deepspeed_fields_from_accelerate_config = ",".join(fields)
        _, env = prepare_deepspeed_cmd_env(args)
    else:
        env = prepare_multi_gpu_env(args)
    env = {k: v for k, v in env.items() if os.environ.get(k) != v}
    env.pop("PYTHONPATH", None)   # launch() sets it
    if not cuda:
        env["ACCELERATE_MIXED_PRECISION"] = "no"
        env.pop("OMP_NUM_THREADS", None)   # launch() shares the cores among the processes
    return env


def launch_command(cfg: StudyConfig, config_json: Path, *, resume: bool = True,
                   cuda: bool | None = None, extra: list[str] | None = None) -> list[str]:
    """The command line that trains cfg in fresh processes."""
    t = cfg.train
    tail = ["-m", "skillmix_utils.stages.train", "--config", str(config_json)]
    tail += [] if resume else ["--restart"]
    tail += extra or []
    if t.launcher == "none" and t.num_processes == 1:
        return [sys.executable] + tail
    yaml_path = accelerate_config(t.launcher, cuda)
    if "cpu_gloo" in yaml_path.name:
        # accelerate launch --cpu starts several CPU processes only through mpirun; torchrun
        # starts them directly and Accelerator() then runs MULTI_CPU on gloo.
        return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                str(t.num_processes), "--master_addr", "127.0.0.1", "--master_port",
                str(_free_port())] + tail
    # In a SLURM job of several nodes: once per node, one process group (nodes.py).
    return across_nodes([sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                         str(yaml_path), "--num_processes", str(t.num_processes),
                         "--main_process_port", str(_free_port())] + tail)


def _require_deepspeed() -> None:
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        raise SkillmixError("launcher 'deepspeed' needs the deepspeed package: "
                            "pip install --no-build-isolation deepspeed (or pip install "
                            "'skillmix[deepspeed]')", field="train.launcher")


def launch(cfg: StudyConfig, *, resume: bool = True, extra: list[str] | None = None,
           log_file: Path | None = None) -> int:
    """Run training in a subprocess and wait; raises SkillmixError if it fails."""

    root = run_dir(cfg)
    # Prepare the weights once, here: the embedded model is converted on first use, and ranks
    # that each found it missing would all convert it (serialised by a lock, each waiting).
    resolve_model(cfg.train.base_model)
    cmd = launch_command(cfg, write_config_json(cfg, root), resume=resume, extra=extra)
    print("[train] " + " ".join(cmd), flush=True)
    env = {**os.environ}
    # The launched processes must import this checkout even when it is not installed.
    repo = str(CHECKOUT)
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, cfg.train.num_processes))))
    if cfg.train.launcher == "deepspeed":
        _require_deepspeed()
    if "torch.distributed.run" in cmd and cfg.train.launcher in ("fsdp", "deepspeed"):
        env.update(accelerate_env(cfg.train.launcher, cfg.train.num_processes, cuda=False))
    if log_file:
        with open(log_file, "ab") as fh:
            rc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    else:
        rc = subprocess.run(cmd, env=env).returncode
    if rc != 0:
        raise SkillmixError(f"training exited with status {rc} (command: {' '.join(cmd)})",
                            field="train")
    return rc
