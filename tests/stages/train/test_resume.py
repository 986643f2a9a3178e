"""A killed training subprocess resumes from its checkpoint and ends on the same loss curve."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

pytestmark = pytest.mark.slow


def test_killed_run_resumes_on_the_same_curve(make_study, tmp_path):
    from skillmix_utils.stages.train.launch import launch_command, write_config_json
    from skillmix_utils.stages.train.trainer import run_dir, train

    spec = dict(steps=2, batch_size=1, per_device_batch_size=1, checkpoint_every=1,
                **{"lora.dropout": 0.1})  # dropout: the RNG state must be restored too
    ref = train(make_study(tmp_path / "ref", **spec))
    ref_curve = json.loads((run_dir(make_study(tmp_path / "ref", **spec)) / "loss.json").read_text())

    cfg = make_study(tmp_path / "killed", **spec)
    root = run_dir(cfg)
    cmd = launch_command(cfg, write_config_json(cfg, root))
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    env = {**os.environ, "PYTHONPATH": repo}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 240
        while not (root / "checkpoints" / "step-000001" / "state.json").exists():
            assert proc.poll() is None, "training exited before its first checkpoint"
            assert time.time() < deadline
            time.sleep(0.1)
        assert proc.poll() is None, "finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert not (root / "train_summary.json").exists()

    resumed = train(cfg, resume=True)
    assert resumed["resumed_from_step"] == 1
    curve = json.loads((root / "loss.json").read_text())
    assert [c["step"] for c in curve] == [1, 2]
    assert [c["loss"] for c in curve] == pytest.approx([c["loss"] for c in ref_curve], rel=1e-4)
    assert resumed["final_loss"] == pytest.approx(ref["final_loss"], rel=1e-4)
