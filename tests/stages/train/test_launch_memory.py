"""The launcher's command lines and the batch arithmetic (no model needed)."""
from __future__ import annotations

import sys

import pytest

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.stages.train.launch import accelerate_config, launch_command
from skillmix_utils.stages.train.schedule import accumulation_steps, rank_micro_batches, step_indices


def test_launch_commands(make_study, tmp_path):
    cfg = make_study(launcher="fsdp", num_processes=4, mode="full")
    gpu = launch_command(cfg, tmp_path / "c.json", cuda=True)
    assert gpu[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert gpu[gpu.index("--config_file") + 1].endswith("fsdp.yaml")
    assert gpu[gpu.index("--num_processes") + 1] == "4"
    assert gpu[-4:] == ["-m", "skillmix_utils.stages.train", "--config", str(tmp_path / "c.json")]
    cpu = launch_command(cfg, tmp_path / "c.json", cuda=False, resume=False)
    assert cpu[1:3] == ["-m", "torch.distributed.run"] and cpu[-1] == "--restart"
    single = launch_command(make_study(), tmp_path / "c.json")
    assert single == [sys.executable, "-m", "skillmix_utils.stages.train", "--config",
                      str(tmp_path / "c.json")]
    for name in ("ddp", "fsdp", "deepspeed"):
        assert accelerate_config(name, cuda=True).exists()
    assert accelerate_config("ddp", cuda=False).name == "cpu_gloo.yaml"


def test_batch_arithmetic():
    assert accumulation_steps(64, 4, 4) == 4
    with pytest.raises(SkillmixError):
        accumulation_steps(64, 3, 1)
    # Every step sees batch_size distinct examples within an epoch, split over the ranks.
    idx = step_indices(0, 8, 24, seed=1)
    assert len(set(idx)) == 8
    parts = [mb for r in range(2) for mb in rank_micro_batches(idx, 2, 2, r)]
    assert sorted(i for mb in parts for i in mb) == sorted(idx)


def test_launch_prepares_the_weights_once_before_the_ranks_start(make_study, monkeypatch):
    """Ranks that each found the embedded model unconverted would all convert it; the launcher
    resolves (converts) it first, so the ranks find it ready."""
    import importlib
    from types import SimpleNamespace

    launch_mod = importlib.import_module("skillmix_utils.stages.train.launch")
    order = []
    monkeypatch.setattr(launch_mod, "resolve_model",
                        lambda name: order.append(("prepare", name)) or name)
    monkeypatch.setattr(launch_mod.subprocess, "run",
                        lambda cmd, **kw: order.append(("ranks", cmd[2])) or
                        SimpleNamespace(returncode=0))
    launch_mod.launch(make_study(launcher="ddp", num_processes=2))
    assert order == [("prepare", "smollm2-135m-instruct"), ("ranks", "torch.distributed.run")]
