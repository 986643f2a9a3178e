"""What a training config will need, before it runs: memory per device and time.

    skillmix train configs/paper-llama2-13b.yaml --dry-run [--device-gib 80] [--device-tflops 989]

The card is --device-gib, else the config's `train.device_gib`, else an 80 GiB A100/H100.

Memory comes from memory.estimate_memory (derivation in docs/memory.md). Time: a step costs
about 6 x P FLOPs per token for full fine-tuning (forward 2P, backward 4P) and 4 x P for
LoRA / QLoRA (no weight gradients), plus 2 x P again when gradient checkpointing recomputes the
forward; tokens per step are batch_size x the mean tokens of an example (from the data mix when
it exists, else max_length, an upper bound). Divided by processes x the device's dense bf16
TFLOP/s x a model-FLOPs utilisation of 0.4 (what FSDP / QLoRA runs of 7-13B models typically
reach; `skillmix doctor` measures yours).
"""
from __future__ import annotations

import json

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.llm.models import resolve_model
from skillmix_utils.stages.train.formatting import find_mix
from skillmix_utils.stages.train.memory import (
    LLAMA2_13B,
    MISTRAL_7B,
    QWEN25_SHAPES,
    ModelShape,
    device_text,
    estimate_memory,
    fits,
    format_estimate,
    model_shape,
)

KNOWN_SHAPES = {"llama-2-13b-chat": LLAMA2_13B, "meta-llama/Llama-2-13b-chat-hf": LLAMA2_13B,
                "meta-llama/Llama-2-13b-hf": LLAMA2_13B,
                "mistral-7b-instruct-v0.2": MISTRAL_7B,
                "mistralai/Mistral-7B-Instruct-v0.2": MISTRAL_7B,
                "mistralai/Mistral-7B-v0.1": MISTRAL_7B}
# The Qwen2.5 ladder (configs/model-scale.yaml): alias (data/models.yaml) and hub id.
KNOWN_SHAPES.update({name: shape for size, shape in QWEN25_SHAPES.items()
                     for name in (f"qwen2.5-{size.lower()}-instruct", f"Qwen/Qwen2.5-{size}-Instruct")})
DEFAULT_MFU = 0.4
A100_TFLOPS = 312.0   # dense bf16, the paper's hardware class
DEFAULT_DEVICE_GIB = 80.0   # an A100/H100, the paper's hardware class


def shape_for(base_model: str) -> ModelShape:
    """The model's shape, asking the hub last: its config.json from a folder or the local hub
    cache, else a known shape, else the hub. A dry run must answer at once on a machine
    without network (the hub client retries for about 30 s before it gives up)."""
    from transformers import AutoConfig

    for local_only in (True, False):
        if not local_only and base_model in KNOWN_SHAPES:
            return KNOWN_SHAPES[base_model]
        try:
            config = AutoConfig.from_pretrained(resolve_model(base_model),
                                                local_files_only=local_only)
            return model_shape(config, base_model)
        except (OSError, ValueError, SkillmixError):
            continue
    raise SkillmixError(f"cannot read the config of {base_model!r} to size it (not a local "
                        "folder, not in the hub cache, hub not reachable)",
                        field="train.base_model")


def estimate_for_config(cfg: StudyConfig, *, processes: int | None = None,
                        sharding: str | None = None, cuda: bool = True, flash: bool | None = None,
                        shape: ModelShape | None = None) -> dict:
    """The memory estimate of cfg.train on its launcher and processes (or those given)."""
    t = cfg.train
    processes = processes or t.num_processes
    if sharding is None:
        sharding = t.launcher if t.launcher in ("fsdp", "deepspeed") else "none"
    row = t.per_device_batch_size * t.max_length if t.packing else t.max_length
    return estimate_memory(shape or shape_for(t.base_model), t.mode, processes=processes,
                           sharding=sharding, tokens_per_device=t.per_device_batch_size * t.max_length,
                           row_tokens=row, gradient_checkpointing=t.gradient_checkpointing,
                           lora_r=t.lora.r, lora_dropout=t.lora.dropout, cuda=cuda, flash=flash)


def mean_example_tokens(cfg: StudyConfig) -> tuple[float, str]:
    """Mean tokens per training example (about 4 characters a token) and where it came from."""

    t = cfg.train
    try:
        path = find_mix(cfg.out, t.data_mix, t.subsample)
    except SkillmixError:
        return float(t.max_length), "max_length (no data mix yet: an upper bound)"
    if path.is_dir():
        return float(t.max_length), "max_length (datasets folder: an upper bound)"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        return float(t.max_length), "max_length (empty mix)"
    chars = sum(len(m.get("content", "")) for r in rows for m in r.get("messages", []))
    return min(float(t.max_length), chars / len(rows) / 4 + 40), f"{path.name} (chars / 4)"


def time_estimate(cfg: StudyConfig, shape: ModelShape, *, tflops: float = A100_TFLOPS,
                  mfu: float = DEFAULT_MFU) -> dict:
    """Hours for cfg.train's steps on its processes at `tflops` per device and `mfu`."""
    t = cfg.train
    per_token, source = mean_example_tokens(cfg)
    tokens = t.steps * t.batch_size * per_token
    flops_per_token = (6 if t.mode == "full" else 4) * shape.params
    if t.gradient_checkpointing:
        flops_per_token += 2 * shape.params
    seconds = tokens * flops_per_token / (t.num_processes * tflops * 1e12 * mfu)
    return {"tokens": tokens, "tokens_per_example": per_token, "tokens_source": source,
            "flops": tokens * flops_per_token, "hours": seconds / 3600, "tflops": tflops,
            "mfu": mfu, "processes": t.num_processes}


def gpu_hours(cfg: StudyConfig, shape: ModelShape, *, tflops: float = A100_TFLOPS,
              mfu: float = DEFAULT_MFU) -> float:
    """GPU-hours of cfg.train: its hours (time_estimate) on each of its processes.

    >>> from skillmix_utils.core.config import StudyConfig
    >>> cfg = StudyConfig(name="x", train={"base_model": "llama-2-13b-chat", "mode": "full",
    ...                   "steps": 4000, "num_processes": 4, "gradient_checkpointing": True})
    >>> round(gpu_hours(cfg, LLAMA2_13B))
    61
    """
    return time_estimate(cfg, shape, tflops=tflops, mfu=mfu)["hours"] * cfg.train.num_processes


def dry_run_report(cfg: StudyConfig, *, device_gib: float | None = None,
                   tflops: float = A100_TFLOPS) -> tuple[str, bool]:
    """The lines `skillmix train --dry-run` prints, and whether the run fits the device.

    `device_gib` is the card's size as sold (24 for an A10, L4 or 4090) or the memory CUDA
    reports for it (memory.usable_gib turns the first into the second); None means the
    config's `train.device_gib`, else 80.
    """
    t = cfg.train
    device_gib = device_gib or t.device_gib or DEFAULT_DEVICE_GIB
    shape = shape_for(t.base_model)
    est = estimate_for_config(cfg, shape=shape)
    tm = time_estimate(cfg, shape, tflops=tflops)
    ok = fits(est, device_gib)   # headroom included, against what CUDA reports for the card
    lines = [
        f"model: {t.base_model} ({shape.params / 1e9:.2f}B parameters), mode {t.mode}, "
        f"launcher {t.launcher}, {t.num_processes} process(es)",
        f"batch: {t.batch_size} = {t.per_device_batch_size} per device x "
        f"{t.batch_size // (t.per_device_batch_size * t.num_processes) if t.batch_size % (t.per_device_batch_size * t.num_processes) == 0 else '?'}"
        f" accumulation x {t.num_processes}; {t.steps} steps; max_length {t.max_length}",
        format_estimate(est, device_gib),
        f"time: {tm['hours']:.1f} h for {tm['tokens'] / 1e6:.1f}M tokens "
        f"({tm['tokens_per_example']:.0f} per example from {tm['tokens_source']}) at "
        f"{tm['tflops']:g} TFLOP/s per device and MFU {tm['mfu']:.0%}",
    ]
    if not ok:
        lines.append(f"will not fit: {est['total']:.1f} GiB per device > {device_text(device_gib)}; "
                     "try gradient_checkpointing, a smaller per_device_batch_size or max_length, "
                     "more processes with launcher fsdp, or mode qlora")
    return "\n".join(lines), ok
