"""The doctor runs the project's own trainer (`stages.train.trainer.train`), not a loop of its
own, for a few steps in each mode, and compares its losses with the CPU's.

The run on the device is in this process; the CPU reference is the same study in a subprocess
that sees no GPU (`CUDA_VISIBLE_DEVICES=""`), so it takes the trainer's CPU path (fp32, torch
AdamW). (The `--device cpu` hook trains on the CPU only: nothing to compare with.) The first step's loss depends only on the initial weights and the data, so the two agree
within bf16 rounding; later steps too, the updates being small. QLoRA also trains with gradient
checkpointing (non-reentrant, as the trainer sets it) and is saved and resumed: a run stopped
after its first step and resumed must continue the uninterrupted run's loss curve.

The data is the built-in corpus (Python's own documentation) in chat form, so the check needs
no study and no network.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from skillmix_utils.core.config import StudyConfig, TrainSpec
from skillmix_utils.doctor.report import Check
from skillmix_utils.stages.train import run_dir
from skillmix_utils.stages.train.pretrain import builtin_corpus

# Relative loss difference allowed between a bf16 GPU run and the fp32 CPU run: a few units of
# bf16's last place (2^-8 = 0.4%) through the depth of the model and the first updates.
BF16_LOSS_RTOL = 2e-2
# Between two runs of the same computation (resumed against not stopped).
SAME_RTOL = 1e-3


def doctor_rows(n: int = 24, chars: int = 700) -> list[dict]:
    """Training rows in the mix format: a question and a passage of the built-in corpus."""
    docs = [d for d in builtin_corpus() if len(d) > 200][:n]
    return [{"id": f"doc{i}", "messages": [
        {"role": "user", "content": "Explain this part of the Python language."},
        {"role": "assistant", "content": d[:chars]}]} for i, d in enumerate(docs)]


def trainer_study(root: Path, model: str, mode: str, steps: int, *, small: bool,
                  checkpoint_every: int = 0) -> StudyConfig:
    """A study whose train section runs `steps` of `mode` on the doctor's rows (`small`: the
    CPU hook's sizes)."""
    train_spec = TrainSpec(
        base_model=model, mode=mode, data_mix=[1], steps=steps,
        batch_size=2 if small else 4, per_device_batch_size=1 if small else 2,
        learning_rate=1e-4, warmup_steps=1, max_length=96 if small else 256,
        lora={"r": 8, "alpha": 16, "dropout": 0.0}, pretrain={"corpus": None, "ratio": 0.0},
        gradient_checkpointing=mode == "qlora", checkpoint_every=checkpoint_every,
        report_to=[], seed=0)
    return StudyConfig(name=f"doctor-{mode}", output_dir=str(root), train=train_spec)


def losses(cfg: StudyConfig) -> list[float]:
    """The per-step losses a finished run wrote (loss.json)."""
    return [h["loss"] for h in json.loads((run_dir(cfg) / "loss.json").read_text())]


def train_on_cpu(cfg: StudyConfig, data: Path) -> list[float]:
    """Train `cfg` in a subprocess that sees no GPU; its losses."""
    path = Path(cfg.out) / "study_config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cfg.model_dump_json())
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-m", "skillmix_utils.stages.train", "--config",
                           str(path), "--data", str(data), "--restart"],
                          env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError("the CPU reference run failed: " + done.stderr.strip()[-300:])
    return losses(cfg)


def compare(a: list[float], b: list[float], rtol: float) -> tuple[bool, float]:
    """(all steps within rtol, the largest relative difference)."""
    worst = max((abs(x - y) / max(abs(y), 1e-9) for x, y in zip(a, b)), default=float("inf"))
    return len(a) == len(b) and worst <= rtol, worst


def check_trainer(model: str, mode: str, steps: int, workdir: Path, *, cuda: bool) -> Check:
    """`steps` optimiser steps of the trainer in `mode` here and on the CPU: equal losses within
    bf16 rounding; QLoRA also stopped after step 1 and resumed."""
    from skillmix_utils.stages.train.trainer import train  # heavy: torch, transformers

    name = f"trainer {mode}"
    data = workdir / "rows.jsonl"
    if not data.exists():      # passages that fit max_length whole (96 or 256 tokens)
        data.parent.mkdir(parents=True, exist_ok=True)
        rows = doctor_rows(chars=200 if not cuda else 600)
        data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    small = not cuda
    cfg = trainer_study(workdir / mode, model, mode, steps, small=small)
    summary = train(cfg, resume=False, data_path=data)
    here = losses(cfg)
    shown = ", ".join(f"{x:.4f}" for x in here)
    if cuda:
        ref = train_on_cpu(trainer_study(workdir / f"{mode}-cpu", model, mode, steps,
                                         small=small), data)
        ok, worst = compare(here, ref, BF16_LOSS_RTOL)
        detail = (f"{summary['device']}, {summary['attention']}, {summary['optimizer']}: losses "
                  f"{shown} vs CPU {', '.join(f'{x:.4f}' for x in ref)} (worst rel {worst:.1e}, "
                  f"allowed {BF16_LOSS_RTOL:.0e})")
    else:   # the CPU hook: this run is the CPU's own, there is nothing to compare it with
        ok = len(here) == steps and all(math.isfinite(x) for x in here)
        detail = (f"{summary['device']}, {summary['attention']}, {summary['optimizer']}: losses "
                  f"{shown} (the CPU hook: no reference run)")
    if mode == "qlora" and steps >= 2:
        # Stopped after 2 steps with a checkpoint at step 1, then resumed to `steps`: the
        # resumed curve (step 1 from the checkpoint, the rest trained again) is the curve above.
        folder = workdir / "qlora-resumed"
        train(trainer_study(folder, model, mode, 2, small=small, checkpoint_every=1),
              resume=False, data_path=data)
        final = trainer_study(folder, model, mode, steps, small=small, checkpoint_every=1)
        resumed = train(final, resume=True, data_path=data)
        same, drift = compare(losses(final), here, SAME_RTOL)
        ok = ok and same and resumed.get("resumed_from_step") == 1
        detail += (f"; checkpointing non-reentrant, resumed from step "
                   f"{resumed.get('resumed_from_step')}: rel {drift:.1e} from the run not stopped")
    return Check(name, "PASS" if ok else "FAIL", detail)


def adapter_of(workdir: Path, model: str, steps: int, cuda: bool) -> Path | None:
    """The adapter the LoRA trainer check left (for the vLLM parity check), or None."""
    folder = run_dir(trainer_study(workdir / "lora", model, "lora", steps, small=not cuda)) / "adapter"
    return folder if (folder / "adapter_config.json").exists() else None
