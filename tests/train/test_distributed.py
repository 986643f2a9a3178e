"""Two processes on the gloo backend (CPU) take the same steps and end with identical weights."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_two_gloo_processes_end_identical(make_study, tmp_path):
    from skillmix_utils.stages.train import run_training
    from skillmix_utils.stages.train.trainer import train

    cfg = make_study(steps=2, batch_size=2, per_device_batch_size=1, launcher="ddp",
                     num_processes=2, checkpoint_every=0)
    paths = run_training(cfg)          # launcher ddp -> accelerate launch --cpu (cpu_gloo.yaml)
    root = paths["summary"].parent
    summary = json.loads(paths["summary"].read_text())
    assert summary["processes"] == 2 and summary["distributed_type"] == "MULTI_CPU"
    assert summary["effective_batch"] == 2 and summary["accumulation_steps"] == 1
    digests = {p.name: p.read_text() for p in (root / "rank-digests").iterdir()}
    assert set(digests) == {"rank0.txt", "rank1.txt"}
    assert digests["rank0.txt"] == digests["rank1.txt"]
    assert len(json.loads(paths["loss"].read_text())) == 2
    # Same examples per step in one process with 2 accumulation steps: the same loss curve,
    # so the step's loss is normalised over all ranks and micro-batches alike.
    one = make_study(tmp_path / "one", steps=2, batch_size=2, per_device_batch_size=1,
                     checkpoint_every=0)
    train(one)
    single = json.loads((one.out / "train" / "lora-k1-2" / "loss.json").read_text())
    assert [c["loss"] for c in single] == pytest.approx(
        [c["loss"] for c in json.loads(paths["loss"].read_text())], rel=1e-4)
