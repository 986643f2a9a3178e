"""Training reports where people look: TensorBoard event files under the run folder with the
loss, the learning rate each step used, the gradient norm, tokens/s and a held-out loss."""
from __future__ import annotations

import struct

import pytest

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.stages.train.tracking import Tracker


def read_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] from the TensorBoard event files in `folder` (TFRecord framing:
    length, crc, payload, crc)."""
    from tensorboardX.proto import event_pb2

    out: dict = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (n,) = struct.unpack("<Q", data[pos:pos + 8])
            ev = event_pb2.Event.FromString(data[pos + 12:pos + 12 + n])
            pos += 12 + n + 4
            for v in ev.summary.value:
                if v.HasField("simple_value"):
                    out.setdefault(v.tag, []).append((ev.step, v.simple_value))
    return out


@pytest.mark.slow
def test_tensorboard_by_default_with_lr_used_and_heldout_loss(make_study, tiny_model):
    from skillmix_utils.stages.train.trainer import run_dir, train

    # What is logged, not what the model learns: the tests' tiny model (conftest.tiny_model).
    cfg = make_study(base_model=tiny_model, steps=4, batch_size=2, per_device_batch_size=2, warmup_steps=2,
                     checkpoint_every=0, eval_every=2, eval_examples=2, learning_rate=1e-3)
    assert cfg.train.report_to == ["tensorboard"]
    train(cfg)
    scalars = read_scalars(run_dir(cfg) / "tensorboard")
    assert [s for s, _ in scalars["train/loss"]] == [1, 2, 3, 4]
    # Linear warm-up over 2 steps: step 1 uses half the rate, then the full rate.
    assert [round(v, 6) for _, v in scalars["train/lr"]] == [5e-4, 1e-3, 1e-3, 1e-3]
    assert all(v > 0 for _, v in scalars["train/grad_norm"])
    assert all(v > 0 for _, v in scalars["train/tokens_per_second"])
    assert [s for s, _ in scalars["eval/loss"]] == [2, 4]


def test_unknown_or_missing_tracker_is_an_error(tmp_path, monkeypatch):
    with pytest.raises(SkillmixError, match="unknown tracker"):
        Tracker(["tensorbored"], tmp_path)
    import sys
    monkeypatch.setitem(sys.modules, "wandb", None)       # as if not installed
    with pytest.raises(SkillmixError, match="not installed"):
        Tracker(["wandb"], tmp_path)
