"""Fine-tuning the student on D_SKILL-MIX (docs/protocol.md §7): LoRA, QLoRA or full, one CPU/GPU to many.

    from skillmix_utils.stages.train import run_training, trained_artifact
    paths = run_training(cfg)             # outputs/<study>/train/<run>/...
    trained_artifact(cfg)                 # {"base_model": ..., "adapter": Path|None, "model": Path|None}

Modules: formatting (conversation -> ids + answer-only labels), packing (padding-free micro-batches
without cross-example attention), pretrain (the pre-training mix), trainer (the loop),
checkpoint (save / resume), memory (GPU memory estimate), launch (accelerate subprocess),
outputs (adapter/model, loss.json, train_summary.json, model_card.md).
"""
from __future__ import annotations

import json
from pathlib import Path

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.stages.progress import in_kernel
from skillmix_utils.stages.train.launch import launch
from skillmix_utils.stages.train.preflight import check_mix
from skillmix_utils.stages.train.run import run_dir as _run_dir
from skillmix_utils.stages.train.run import settings_fingerprint

__all__ = ["run_training", "trained_artifact", "run_dir"]


def run_dir(cfg: StudyConfig) -> Path:
    """outputs/<study>/train/<mode>-<mix>/"""

    return _run_dir(cfg)


def _paths(root: Path) -> dict[str, Path]:
    names = {"adapter": "adapter", "model": "model", "checkpoints": "checkpoints",
             "loss": "loss.json", "model_card": "model_card.md", "summary": "train_summary.json"}
    return {k: root / v for k, v in names.items() if (root / v).exists()}


def run_training(cfg: StudyConfig, resume: bool = True, *, subprocess: bool | None = None
                 ) -> dict[str, Path]:
    """Train cfg.train and return the output paths (skips a run whose summary already exists).

    Several processes, a launcher, or a call from a notebook kernel go through a subprocess
    (`accelerate launch ...`); a plain single-process call from a script trains in-process
    unless `subprocess=True`.
    """
    t = cfg.train
    if t is None:
        raise SkillmixError("the study config has no train section", field="train")
    root = run_dir(cfg)
    if not t.enabled:
        return _paths(root)
    summary = root / "train_summary.json"
    if resume and summary.exists():

        done = json.loads(summary.read_text())
        if done.get("steps") == t.steps and done.get("settings") == settings_fingerprint(cfg):
            print(f"[train] {root} is complete; skipping (use --restart to train again)")
            if t.merge_adapter and t.mode != "full" and not (root / "model" / "config.json").exists():

                from skillmix_utils.stages.train.outputs import merge_adapter  # heavy: torch

                print("[train] merging the adapter (the last run ended before its merge)")
                merge_adapter(t.base_model, root / "adapter", root / "model")
            return _paths(root)
        print(f"[train] {root} was trained with other settings or steps; training again")
        resume = False   # its checkpoints belong to the old settings
    check_mix(cfg)         # an empty mix is said before a model loads
    if subprocess is None:
        subprocess = in_kernel() or t.launcher != "none" or t.num_processes > 1
    if subprocess:

        launch(cfg, resume=resume)
    else:
        from skillmix_utils.stages.train.trainer import train  # heavy: torch, transformers

        train(cfg, resume=resume)
    return _paths(root)


def trained_artifact(cfg: StudyConfig, run: str | None = None) -> dict:
    """What the evaluation stage loads for a student with `adapter: "@train"` (or "@train:RUN").

    `model` is set for full fine-tuning or a merged adapter (load it alone); otherwise load
    `base_model` with `adapter`. `run` names another folder under outputs/<study>/train/.
    """
    t = cfg.train
    if t is None:
        raise SkillmixError("adapter '@train' needs a train section", field="train")
    root = cfg.out / "train" / run if run else run_dir(cfg)
    adapter, model = root / "adapter", root / "model"
    out = {"base_model": t.base_model,
           "adapter": adapter if (adapter / "adapter_config.json").exists() else None,
           "model": model if (model / "config.json").exists() else None}
    if out["adapter"] is None and out["model"] is None:
        raise SkillmixError(f"no trained model in {root} (run `skillmix train` first)",
                            field="train")
    return out
