"""Which run a training config makes: its folder under outputs/<study>/train/, and the settings a
checkpoint or finished run must share with the config to be reused."""
from __future__ import annotations

from pathlib import Path

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.stages.train.formatting import mix_name


def run_name(cfg: StudyConfig) -> str:
    """Folder name of a training run under outputs/<study>/train/, e.g. lora-k1-2."""
    t = cfg.train
    return f"{t.mode}-{mix_name(t.data_mix, t.subsample)}"


def run_dir(cfg: StudyConfig) -> Path:
    """outputs/<study>/train/<run name>."""
    return cfg.out / "train" / run_name(cfg)


def settings_fingerprint(cfg: StudyConfig) -> dict:
    """The training settings a checkpoint or a finished run must share with the config to be
    reused. Left out: the step count (it may grow), and what changes no weights: checkpointing,
    merging, how the same effective batch is spread over devices and processes, the card it is
    planned for, and the attention kernel (flash-attn and sdpa compute the same attention)."""
    return cfg.train.model_dump(mode="json", exclude={
        "steps", "checkpoint_every", "enabled", "merge_adapter", "per_device_batch_size",
        "launcher", "num_processes", "gradient_checkpointing", "report_to", "eval_every",
        "attention", "device_gib"})
