"""Two processes on the gloo backend (CPU) take the same steps and end with identical weights."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "data"
pytestmark = pytest.mark.slow


def test_two_gloo_processes_end_identical_and_evaluate(make_study, tmp_path, tiny_model):
    """`skillmix train` with launcher ddp on 2 processes and a held-out loss every step: the
    evaluation runs on the DDP-wrapped model's bare module (it has the config), and both ranks
    end identical to one process taking the same steps, held-out losses included. The runs are
    compared with each other, so on the tests' tiny model (conftest.tiny_model)."""
    from skillmix_utils.stages.train.trainer import train

    settings = dict(base_model=tiny_model, steps=2, batch_size=2, per_device_batch_size=1, checkpoint_every=0,
                    eval_every=1, eval_examples=2)
    cfg = make_study(launcher="ddp", num_processes=2, **settings)   # puts the mix in place
    sets = [f"output_dir={cfg.out}", "train.launcher=ddp", "train.num_processes=2"]
    sets += [f"train.{k}={v}" for k, v in settings.items()]
    args = [a for kv in sets for a in ("--set", kv)]
    proc = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", "train",
                           str(DATA / "train_small.yaml"), *args],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    root = cfg.out / "train" / "lora-k1-2"
    summary = json.loads((root / "train_summary.json").read_text())
    assert summary["processes"] == 2 and summary["distributed_type"] == "MULTI_CPU"
    assert summary["effective_batch"] == 2 and summary["accumulation_steps"] == 1
    assert summary["precision"] == "fp32" and summary["warnings"] == []   # the CPU path
    digests = {p.name: p.read_text() for p in (root / "rank-digests").iterdir()}
    assert set(digests) == {"rank0.txt", "rank1.txt"}
    assert digests["rank0.txt"] == digests["rank1.txt"]
    curve = json.loads((root / "loss.json").read_text())
    assert len(curve) == 2 and all(c["eval_loss"] > 0 for c in curve)
    # Same examples per step in one process with 2 accumulation steps: the same loss curve,
    # so the step's loss is normalised over all ranks and micro-batches alike; and the same
    # held-out loss, so evaluation saw the same weights.
    one = make_study(tmp_path / "one", **settings)
    train(one)
    single = json.loads((one.out / "train" / "lora-k1-2" / "loss.json").read_text())
    for key in ("loss", "eval_loss"):
        assert [c[key] for c in single] == pytest.approx([c[key] for c in curve], rel=1e-4)
