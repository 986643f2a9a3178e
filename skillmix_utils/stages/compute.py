"""What a study's local work needs before it runs: GPUs, memory per GPU and GPU-hours, beside
the API dollars of a dry run (runner/dry_run.py) and the resources of a SLURM job.

- training (notebook 03): memory per device from `train.memory` (docs/memory.md) on the run's
  launcher and processes, time from `train.plan.time_estimate`; GPU-hours are its hours on
  each of `train.num_processes` GPUs.
- a local model (`hf:` / `vllm:`) in a stage's dry-run plan (02, 04): its weights in bf16 (or
  4-bit NF4 when `options.quantization` says so) plus a tenth for the KV cache and activations
  and 1 GiB of CUDA context, over as many GPUs as that takes; time is 2 x P FLOPs per token
  read or written at `INFERENCE_MFU` of the device (batched generation is bound by memory
  bandwidth: a tenth of the dense TFLOP/s is what a 7-13B model reaches with batches of 32).

Every figure is for `device_gib` GPUs (80 GiB, A100 / H100 class) at `tflops` (312, A100 bf16).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.llm import parse_spec
from skillmix_utils.stages.train.plan import (
    A100_TFLOPS,
    estimate_for_config,
    gpu_hours,
    shape_for,
)

DEVICE_GIB = 80.0
INFERENCE_MFU = 0.1
GIB = 1024 ** 3


@dataclass
class Compute:
    """One piece of local work: what it is, on how many GPUs (and nodes), memory per GPU."""
    what: str
    gpus: int
    gib_per_gpu: float
    gpu_hours: float
    device_gib: float = DEVICE_GIB
    training: bool = False

    @property
    def fits(self) -> bool:
        return self.gib_per_gpu <= self.device_gib

    def line(self) -> str:
        """One line for a dry run.

        >>> Compute("train x", 4, 57.25, 61.0).line()
        'train x: 4 GPUs x 57.2 GiB of 80 (22.8 GiB headroom), 61.0 GPU-hours'
        """
        return f"{self.what}: {self.needs()}"

    def needs(self) -> str:
        """GPUs, memory per GPU with its headroom, GPU-hours."""
        room = self.device_gib - self.gib_per_gpu
        fit = f"{room:.1f} GiB headroom" if room >= 0 else f"WILL NOT FIT: {-room:.1f} GiB over"
        return (f"{self.gpus} GPU{'s' * (self.gpus != 1)} x {self.gib_per_gpu:.1f} GiB of "
                f"{self.device_gib:g} ({fit}), {self.gpu_hours:.1f} GPU-hours")


def training_compute(cfg: StudyConfig, *, device_gib: float = DEVICE_GIB,
                     tflops: float = A100_TFLOPS) -> Compute:
    """The training run of cfg.train (raises SkillmixError when its model cannot be sized offline)."""
    t = cfg.train
    shape = shape_for(t.base_model)
    est = estimate_for_config(cfg, shape=shape)
    how = t.mode + (f", {t.launcher}" if t.launcher != "none" else "")
    return Compute(f"train {t.base_model} ({shape.params / 1e9:.2f}B, {how})", t.num_processes,
                   est["total"], gpu_hours(cfg, shape, tflops=tflops), device_gib, training=True)


def is_local(spec: str) -> bool:
    """Whether a backend spec runs on this study's own GPUs (hf:, vllm:)."""
    return parse_spec(spec)[0] in ("hf", "vllm")


def inference_compute(spec: str, input_tokens: int, output_tokens: int, *, quantization=None,
                      device_gib: float = DEVICE_GIB, tflops: float = A100_TFLOPS) -> Compute:
    """A local model reading and writing these tokens.

    >>> c = inference_compute("hf:llama-2-13b-chat", 10_000_000, 2_000_000)
    >>> c.gpus, round(c.gib_per_gpu, 1), round(c.gpu_hours, 2)
    (1, 27.7, 2.78)
    """
    name = parse_spec(spec)[1]
    params = shape_for(name).params
    per_param = 0.55 if str(quantization or "").lower() in ("nf4", "4bit", "int4") else 2.0
    total = params * per_param * 1.1 / GIB + 1.0
    gpus = max(1, math.ceil(total / device_gib))
    hours = 2 * params * (input_tokens + output_tokens) / (tflops * 1e12 * INFERENCE_MFU) / 3600
    return Compute(f"{spec} ({params / 1e9:.2f}B)", gpus, total / gpus, hours, device_gib)


def plan_compute(plan, quantization: dict | None = None, **kw) -> list[Compute]:
    """The local models of a stage's dry-run plan (`stages.plan.Plan`), one entry per model."""
    tokens: dict[str, list[int]] = {}
    for row in plan.rows.values():
        if is_local(row.model):
            t = tokens.setdefault(row.model, [0, 0])
            t[0] += row.input_tokens
            t[1] += row.output_tokens
    return [inference_compute(spec, i, o, quantization=(quantization or {}).get(spec), **kw)
            for spec, (i, o) in tokens.items()]
