"""Two processes on the gloo backend (CPU) take the same steps and end with identical weights."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_two_gloo_processes_end_identical(make_study):
    from skillmix_utils.train import run_training

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
