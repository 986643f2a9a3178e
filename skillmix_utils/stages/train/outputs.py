"""What a finished run leaves in outputs/<study>/train/<run>/.

    adapter/ or model/     the LoRA adapter (+ tokenizer) or the full model (+ tokenizer)
    model/ (merged)        with merge_adapter: the adapter merged into the base, ready to serve
                           (trainer.train merges after the process group has ended)
    loss.json              the loss curve: one entry per optimiser step
    train_summary.json     effective batch, real-token fraction, dropped/truncated, tokens/s, ...
    model_card.md          data, hyper-parameters and the code version (and, once `skillmix metrics`
                           or `skillmix push` has run, the study's metrics table: `write_card`)
    rank-digests/          sha256 of each rank's trained weights (DDP ranks must agree)
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.llm.models import load_causal_lm, load_tokenizer
from skillmix_utils.stages.train.card import base_hub_id, model_card, portable_base
from skillmix_utils.stages.train.run import run_dir


def weights_digest(model) -> str:
    """sha256 over the trainable parameters in name order (equal on DDP ranks in sync)."""
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        if p.requires_grad:
            h.update(name.encode())
            h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_dtype(accelerator) -> torch.dtype:
    """bf16 where training computed in bf16 (mixed precision on CUDA), else float32."""
    return torch.bfloat16 if accelerator.mixed_precision == "bf16" else torch.float32


def merge_adapter(base_model: str, adapter: str | Path, target: str | Path) -> Path:
    """Merge a LoRA adapter into an unquantised copy of its base and save it to target."""

    cuda = torch.cuda.is_available()
    # Always merge into 16/32-bit weights: merging into NF4 would re-quantise and lose the delta.
    model = load_causal_lm(base_model, dtype="bfloat16" if cuda else "float32", adapter=str(adapter))
    model = model.merge_and_unload()
    model.save_pretrained(target)
    load_tokenizer(base_model).save_pretrained(target)
    return Path(target)


def write_outputs(cfg: StudyConfig, accelerator, model, tokenizer, history: list[dict],
                  summary: dict) -> dict[str, Path]:
    """Save the trained weights, loss curve, summary and model card (main process writes)."""

    t = cfg.train
    root = run_dir(cfg)
    sharded = accelerator.distributed_type.name in ("FSDP", "DEEPSPEED")
    unwrapped = accelerator.unwrap_model(model)
    if not sharded:
        (root / "rank-digests").mkdir(parents=True, exist_ok=True)
        (root / "rank-digests" / f"rank{accelerator.process_index}.txt").write_text(
            weights_digest(unwrapped))
    target = root / ("model" if t.mode == "full" else "adapter")
    state = accelerator.get_state_dict(model) if sharded else None  # collective under FSDP
    if accelerator.is_main_process:
        if t.mode == "full":
            # Saved in the dtype it computed in (bf16 on CUDA), with a config that says so:
            # a float32 config makes vLLM serve fp16 while transformers loads bf16.
            dtype = save_dtype(accelerator)
            state = {k: v.to(dtype) if v.is_floating_point() else v
                     for k, v in (state if state is not None else unwrapped.state_dict()).items()}
            unwrapped.config.dtype = dtype
        unwrapped.save_pretrained(target, state_dict=state, save_function=accelerator.save)
        tokenizer.save_pretrained(target)
        (root / "loss.json").write_text(json.dumps(history, indent=1))
        (root / "train_summary.json").write_text(json.dumps(summary, indent=2))
        card = model_card(cfg, summary)
        (root / "model_card.md").write_text(card)
        (target / "README.md").write_text(card)        # replaces PEFT's blank template
        portable_base(target / "adapter_config.json", base_hub_id(t.base_model))
    accelerator.wait_for_everyone()
    return {"run": root, "weights": target}
