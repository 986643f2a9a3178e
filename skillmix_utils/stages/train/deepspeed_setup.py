"""DeepSpeed ZeRO-3 made numerically the trainer's FSDP: fp32 gradients and exact fp32 masters.

    deepspeed_settings(plugin.deepspeed_config, cfg, accum)   # before accelerator.prepare
    exact_master_weights(accelerator.unwrap_model(model), cfg.train.base_model)   # after it

Under bf16 DeepSpeed by default accumulates the micro-batches' gradients and reduces them across
ranks in bf16 (8 bits of mantissa: over 16 micro-batches or 4 ranks the small contributions are
lost), and ZeRO-3 builds its fp32 master weights from parameters that zero.Init already cast to
bf16 as they loaded. FSDP in this trainer reduces and accumulates in fp32 and keeps the loaded
fp32 weights as masters. `deepspeed_settings` sets `data_types.grad_accum_dtype` and
`communication_data_type` to fp32 (DeepSpeed 0.19's keys); `exact_master_weights` then writes
each trainable parameter's fp32 master partition from the checkpoint itself, tensor by tensor.
The bf16 weights the forward pass uses are the same either way (bf16 of the same values).
"""
from __future__ import annotations

from pathlib import Path

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.llm.models import resolve_model


def deepspeed_settings(ds: dict, cfg: StudyConfig, accum: int) -> dict:
    """The trainer's settings in DeepSpeed's config (in place, returned): batch, accumulation
    and clipping from the study config, and gradients accumulated and reduced in fp32."""
    t = cfg.train
    ds["train_micro_batch_size_per_gpu"] = t.per_device_batch_size
    ds["gradient_accumulation_steps"] = accum
    ds["train_batch_size"] = t.batch_size
    ds["gradient_clipping"] = float(t.max_grad_norm)
    ds.setdefault("data_types", {})["grad_accum_dtype"] = "fp32"
    ds["communication_data_type"] = "fp32"
    return ds


def gloo_collectives_on_cpu() -> None:
    """On a CPU, let DeepSpeed's collectives go through torch.distributed on gloo instead of
    JIT-compiling its shared-memory all-reduce op with the host's C++ compiler on first use:
    71 to 312 s per build on a 2-core machine (its ninja log), again in every fresh environment,
    for a speed-up that a CPU run of this trainer (a check, never a study) does not need. The op
    is only ever built for a CPU accelerator; GPU runs are unaffected. DeepSpeed skips an op
    marked incompatible."""
    import deepspeed.ops  # heavy

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


def _weight_files(name: str) -> list[Path]:
    path = Path(resolve_model(name))
    if not path.is_dir():   # a hub id: from_pretrained has just filled the hub cache
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(str(path), allow_patterns=["*.safetensors"]))
    return sorted(path.glob("*.safetensors"))


def exact_master_weights(model, name: str) -> list[str]:
    """Set the fp32 master partition of every trainable ZeRO-3 parameter of `model` (unwrapped)
    from the safetensors checkpoint of `name`; returns the trainable parameters it could not
    find there (their masters stay as DeepSpeed built them)."""
    import torch  # heavy
    import torch.distributed as dist
    from deepspeed.utils import safe_set_local_fp32_param
    from safetensors import safe_open

    params = {n: p for n, p in model.named_parameters() if p.requires_grad and hasattr(p, "ds_id")}
    done = set()
    for file in _weight_files(name):
        with safe_open(str(file), framework="pt") as fh:
            for key in fh.keys():
                p = params.get(key)
                if p is None or key in done:
                    continue
                # This rank's slice of the flat tensor, padded as ZeRO-3 pads its last partition.
                group = getattr(p, "ds_process_group", None)
                rank, world = dist.get_rank(group=group), dist.get_world_size(group=group)
                part = p.ds_tensor.numel()
                flat = fh.get_tensor(key).to(torch.float32).flatten()
                flat = torch.nn.functional.pad(flat, (0, part * world - flat.numel()))
                safe_set_local_fp32_param(p, flat[rank * part:(rank + 1) * part])
                done.add(key)
    return sorted(set(params) - done)
