"""Checkpoints every N steps, and resuming so that the loss curve continues unchanged.

    checkpoints/step-000500/
      trainable.pt      the parameters that train (the adapter, or the whole model in full mode)
      optimizer.pt  scheduler.pt  rng-rank<r>.pt (python, numpy, torch, cuda; one per process)
      state.json        step, examples seen (the data position), loss history so far

The data order is a pure function of (seed, step), so the step is the data position. A
checkpoint is written to `step-N.tmp` and renamed when every rank has written, so a kill during
a write never leaves a half checkpoint that resume would pick. Under FSDP or DeepSpeed ZeRO-3
the parameters and optimiser are sharded, so accelerate's own `save_state`/`load_state` writes
and reads them (into `accelerate/`) instead of trainable.pt/optimizer.pt.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch


def _sharded(accelerator) -> bool:
    return accelerator.distributed_type.name in ("FSDP", "DEEPSPEED")


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_state(model) -> dict:
    """The parameters that train, detached to the CPU (names as in the unwrapped model)."""
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest complete checkpoint under root, or None."""
    root = Path(root)
    done = sorted(p for p in root.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp")
                  and (p / "state.json").exists())
    return done[-1] if done else None


def save_checkpoint(accelerator, model, optimizer, scheduler, *, root: str | Path, step: int,
                    state: dict, keep: int = 2) -> Path:
    """Write checkpoint `step` on every rank (collective: all ranks must call it)."""
    root = Path(root)
    final = root / f"step-{step:06d}"
    tmp = root / f"step-{step:06d}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    if _sharded(accelerator):
        accelerator.save_state(str(tmp / "accelerate"))
    elif accelerator.is_main_process:
        torch.save(trainable_state(accelerator.unwrap_model(model)), tmp / "trainable.pt")
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    if accelerator.is_main_process:
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(_rng_state(), tmp / f"rng-rank{accelerator.process_index}.pt")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / "state.json").write_text(json.dumps({**state, "step": step}))
        os.replace(tmp, final)
        for old in sorted(p for p in root.glob("step-*") if not p.name.endswith(".tmp"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator, model, optimizer, scheduler, path: str | Path) -> dict:
    """Restore everything save_checkpoint wrote; returns the saved state (step, history, ...)."""
    path = Path(path)
    if _sharded(accelerator):
        accelerator.load_state(str(path / "accelerate"))
    else:
        sd = torch.load(path / "trainable.pt", map_location="cpu")
        target = accelerator.unwrap_model(model)
        missing = {n for n, p in target.named_parameters() if p.requires_grad} - set(sd)
        if missing:
            raise RuntimeError(f"checkpoint {path} lacks trainable parameters: {sorted(missing)[:3]}")
        target.load_state_dict(sd, strict=False)
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location="cpu",
                                             weights_only=False))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    rng = path / f"rng-rank{accelerator.process_index}.pt"
    if rng.exists():
        _set_rng_state(torch.load(rng, weights_only=False))
    return json.loads((path / "state.json").read_text())
