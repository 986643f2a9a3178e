"""The training loop: the paper's recipe (docs/protocol.md §7) with LoRA, QLoRA or full fine-tuning.

    python -m skillmix_utils.stages.train --config outputs/demo/train/lora-k1-2/study_config.json

Recipe: Adam (AdamW with weight decay 0), linear warm-up for `warmup_steps` then a constant
learning rate, `steps` optimiser steps of `batch_size` examples each, reached as
per_device_batch_size x accumulation x processes (printed and recorded). One step's loss is the
mean over every answer token of the step on all processes, so accumulation and DDP give the same
gradient as one big batch.

Precision (precision.py, `train.precision`, recorded as `precision` in the summary): on CUDA
bf16 where the GPU has it, else fp16 with accelerate's loss scaling; fp32 on a CPU. Below,
"half" is that compute dtype. Modes: full (fp32 master weights, half autocast on CUDA); lora
(peft, frozen base in half on CUDA, fp32 on CPU); qlora (NF4 + double quantisation, compute in
half on CUDA, paged 8-bit AdamW, gradient checkpointing, as configured, through
peft.prepare_model_for_kbit_training). CPU fallback for qlora:
bitsandbytes 0.50 runs NF4 on the CPU with fp32 compute (with its inference repacking off, nf4.py),
but its paged 8-bit optimisers need
CUDA, so the CPU uses torch AdamW for the adapter (recorded as `optimizer` in the summary).
torch AdamW runs fused on CUDA (no step-sized temporary: memory.py). Attention
(attention.py): flash-attn 2 on CUDA when installed, else sdpa with a WARN in the log and the
summary's `warnings`; a broken flash-attn install stops the run unless `attention: sdpa`.
accelerate places the model and wraps it for DDP / FSDP / DeepSpeed; the launcher (launch.py)
starts the processes. On CUDA every mode computes under half autocast (QLoRA included:
prepare_model_for_kbit_training leaves norms and the residual stream in fp32, autocast keeps the
matmuls and most activations in half).

One configuration, whatever the launcher: the trainer, not the accelerate yaml, owns the
accumulation steps, the micro-batch and `max_grad_norm` (DeepSpeed's config gets them before
prepare). Under FSDP every micro-batch's gradients are reduce-scattered at once (no `no_sync`):
accumulating unsharded would hold a full bf16 copy of the gradients on each GPU (+26 GB for
13B); the sharded gradients accumulate in fp32 and are reduced in fp32. DeepSpeed ZeRO-3 is set
up to do the same (deepspeed_setup.py: fp32 gradient accumulation and communication, and fp32
master weights written from the checkpoint rather than from their bf16 copies).
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import torch

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.provenance import git_commit
from skillmix_utils.llm.models import load_causal_lm, load_tokenizer, resolve_model
from skillmix_utils.stages.train import checkpoint as ckpt
from skillmix_utils.stages.train import nf4, tracking
from skillmix_utils.stages.train.attention import FLASH, broken_error, choose_attention
from skillmix_utils.stages.train.dataset import build_examples
from skillmix_utils.stages.train.deepspeed_setup import (
    deepspeed_settings,
    exact_master_weights,
    gloo_collectives_on_cpu,
)
from skillmix_utils.stages.train.formatting import Example
from skillmix_utils.stages.train.memory import format_estimate, model_shape
from skillmix_utils.stages.train.outputs import merge_adapter, write_outputs
from skillmix_utils.stages.train.packing import answer_loss, collate
from skillmix_utils.stages.train.plan import estimate_for_config
from skillmix_utils.stages.train.precision import DTYPE_NAME, MIXED_PRECISION, precision_for
from skillmix_utils.stages.train.run import run_dir, run_name, settings_fingerprint
from skillmix_utils.stages.train.schedule import accumulation_steps, rank_micro_batches, step_indices


def _load_model(cfg: StudyConfig, accelerator):

    t = cfg.train
    cuda = accelerator.device.type == "cuda"
    compute = DTYPE_NAME[precision_for(t.precision)]   # bfloat16 / float16 on CUDA, else float32
    if t.mode == "qlora":
        from peft import prepare_model_for_kbit_training

        device_map = {"": accelerator.local_process_index} if cuda else None
        model = load_causal_lm(t.base_model, quantization="nf4", device_map=device_map,
                               compute_dtype=compute)
        nf4.keep_differentiable(model)   # the probe's eval pass would break its gradients on some CPUs
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=t.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        dtype = compute if t.mode == "lora" else "float32"
        if t.mode == "full" and _ranks_share_weights(accelerator):
            model = _empty_model(t.base_model)
        else:
            model = load_causal_lm(t.base_model, dtype=dtype)
        # FSDP's own activation checkpointing (fsdp.yaml) wraps every decoder layer at prepare;
        # HF's on top would recompute each layer's forward a second time.
        if t.gradient_checkpointing and not _fsdp_checkpoints_activations(accelerator):
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False})
            if t.mode == "lora":
                model.enable_input_require_grads()
    impl, _ = choose_attention(t.attention, cuda=cuda)   # train() logs the fallback warning
    if impl == FLASH:
        try:
            model.set_attn_implementation(FLASH)
        except Exception as exc:  # transformers' own checks of the flash-attn install
            raise broken_error(f"{type(exc).__name__}: {exc}") from exc
    if t.mode in ("lora", "qlora"):
        from peft import LoraConfig, get_peft_model

        lc = LoraConfig(r=t.lora.r, lora_alpha=t.lora.alpha, lora_dropout=t.lora.dropout,
                        target_modules=t.lora.target_modules, task_type="CAUSAL_LM")
        model = get_peft_model(model, lc)
    model.config.use_cache = False
    return model


def _ranks_share_weights(accelerator) -> bool:
    """True on the ranks that need no weights of their own: FSDP with cpu-ram-efficient loading
    broadcasts local rank 0's full state dict into every shard at prepare(). (DeepSpeed ZeRO-3
    does the same through transformers' zero.Init when zero3_init_flag is set.)"""
    plugin = getattr(accelerator.state, "fsdp_plugin", None)
    return (accelerator.distributed_type.name == "FSDP" and plugin is not None
            and bool(plugin.cpu_ram_efficient_loading) and accelerator.local_process_index != 0)


def _fsdp_checkpoints_activations(accelerator) -> bool:
    """True when accelerate's FSDP plugin applies activation checkpointing at prepare()."""
    plugin = getattr(accelerator.state, "fsdp_plugin", None)
    return (accelerator.distributed_type.name == "FSDP" and plugin is not None
            and bool(plugin.activation_checkpointing))


def _empty_model(name: str):
    """The model's structure with uninitialised fp32 parameters: no weights are read, and the
    untouched pages of torch.empty take no physical memory before accelerate moves the model to
    the meta device. (Parameters on the meta device itself would all share data_ptr 0, which
    accelerate's optimiser re-mapping relies on.) Buffers such as the rotary frequencies stay
    real: FSDP does not broadcast them."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM


    config = AutoConfig.from_pretrained(resolve_model(name))
    with init_empty_weights(include_buffers=False):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    for module in model.modules():
        for key, p in list(module.named_parameters(recurse=False)):
            if p.is_meta:
                module._parameters[key] = torch.nn.Parameter(
                    torch.empty(p.shape, dtype=p.dtype), requires_grad=p.requires_grad)
    model.tie_weights()
    return model


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "false").lower() in ("true", "1")


def make_accelerator(cfg: StudyConfig, accum: int):
    """The Accelerator for this process, configured from the trainer's settings.

    Launched with an FSDP or DeepSpeed yaml's environment (launch.py), accelerate takes its FSDP
    or DeepSpeed path. On a CPU accelerate reserves both for accelerators and would silently run
    DDP, although torch FSDP2 and DeepSpeed run on gloo; there the process group is brought up on
    gloo first and the state is told which path to take, so the CPU tests execute the same
    sharding code as a GPU cluster. DeepSpeed's accumulation, micro-batch and clipping come from
    the trainer (the yaml's `gradient_accumulation_steps: 1` would otherwise win and make every
    micro-batch an optimiser step). Mixed precision follows train.precision (precision.py).
    """
    from accelerate import Accelerator, PartialState
    from accelerate.utils import DistributedType

    t = cfg.train
    cuda = torch.cuda.is_available()
    precision = precision_for(t.precision)
    fsdp, deepspeed = _env_flag("ACCELERATE_USE_FSDP"), _env_flag("ACCELERATE_USE_DEEPSPEED")
    if deepspeed:
        os.environ["ACCELERATE_GRADIENT_ACCUMULATION_STEPS"] = str(accum)
        os.environ["ACCELERATE_GRADIENT_CLIPPING"] = str(float(t.max_grad_norm))
    state = PartialState(cpu=not cuda)
    sharded_on_cpu = not cuda and (fsdp or deepspeed) and state.num_processes > 1
    if sharded_on_cpu:
        # AcceleratorState enables FSDP only for accelerator distributed types and DeepSpeed only
        # when not cpu; the gloo group and the CPU device set up above stay as they are.
        state.distributed_type = (DistributedType.DEEPSPEED if deepspeed
                                  else DistributedType.MULTI_GPU)
        if deepspeed:
            gloo_collectives_on_cpu()
    kwargs = {}
    if fsdp and cuda and precision != "fp32":
        from accelerate import FullyShardedDataParallelPlugin

        # Half-precision compute, fp32 gradient reduction (accelerate's default reduces in the
        # half dtype).
        half = getattr(torch, DTYPE_NAME[precision])
        kwargs["fsdp_plugin"] = FullyShardedDataParallelPlugin(mixed_precision_policy={
            "param_dtype": half, "reduce_dtype": torch.float32, "output_dtype": half})
    # fp16 gets accelerate's GradScaler (loss scaling); bf16 needs none.
    accelerator = Accelerator(mixed_precision=MIXED_PRECISION[precision],
                              cpu=not cuda and not sharded_on_cpu,
                              gradient_accumulation_steps=accum, **kwargs)
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        deepspeed_settings(accelerator.state.deepspeed_plugin.deepspeed_config, cfg, accum)
    return accelerator


def _optimizer(cfg: StudyConfig, params, cuda: bool):
    t = cfg.train
    if t.mode == "qlora" and cuda:
        import bitsandbytes as bnb

        return bnb.optim.PagedAdamW8bit(params, lr=t.learning_rate, weight_decay=0.0)
    return torch.optim.AdamW(params, **adamw_settings(cfg, cuda))


def adamw_settings(cfg: StudyConfig, cuda: bool) -> dict:
    """torch AdamW's arguments: weight decay 0 (plain Adam, as in the paper), fused on CUDA.

    torch's default on CUDA (foreach) allocates, at the step, a temporary the size of all the
    parameters it updates (12.1 GiB for 13B sharded over 4 GPUs): the run's peak would be the
    optimiser step (memory.optimizer_step_bytes). Fused AdamW updates in place. The CPU keeps
    torch's default.
    """
    settings = {"lr": cfg.train.learning_rate, "weight_decay": 0.0}
    if cuda:
        settings["fused"] = True
    return settings


def _attention_kind(model) -> str:
    impl = getattr(model.config, "_attn_implementation", None) or "sdpa"
    return "flash" if "flash" in impl else impl


def _micro_batch(examples, cfg: StudyConfig, pad_id: int, kind: str, dtype):
    t = cfg.train
    mask_dtype = dtype if kind == "eager" else torch.bool  # eager needs an additive mask
    # Unpacked rows are padded to the micro-batch's longest example, not to max_length: the
    # padding would be computed like real tokens (the demo's 450-token examples: 12% of a step).
    return collate(examples, packed=t.packing, pad_id=pad_id, flash=kind == "flash",
                   mask_dtype=mask_dtype)


@torch.no_grad()
def mean_loss(model, examples: list[Example], *, pad_id: int = 0, packed: bool = True) -> float:
    """Mean per-answer-token loss of a model on examples (one micro-batch each), no dropout.

    `model` is the bare model (accelerator.unwrap_model of a prepared one)."""
    was = model.training
    model.eval()
    total, n = 0.0, 0
    device = next(model.parameters()).device
    kind = _attention_kind(model)
    for e in examples:
        b = collate([e], packed=packed, pad_id=pad_id, flash=kind == "flash").to(device)
        total += answer_loss(model, b).item()
        n += b.n_labels
    model.train(was)
    return total / max(n, 1)


def train(cfg: StudyConfig, *, resume: bool = True, data_path: str | Path | None = None,
          probe: int = 0) -> dict:
    """Run (or resume) the training of cfg.train in this process (one rank of a launch).

    `probe` > 0 records the mean loss on the first `probe` skill-mix examples before and after
    training (`probe_loss_start`, `probe_loss_end` in the summary). Returns the summary dict.
    """
    from accelerate import PartialState
    from accelerate.utils import set_seed


    t = cfg.train
    if t is None:
        raise SkillmixError("the study config has no train section", field="train")
    cuda = torch.cuda.is_available()
    processes = PartialState(cpu=not cuda).num_processes
    accum = accumulation_steps(t.batch_size, t.per_device_batch_size, processes)
    accelerator = make_accelerator(cfg, accum)
    rank, world = accelerator.process_index, accelerator.num_processes
    log = accelerator.print
    set_seed(t.seed)  # same initial adapter weights on every rank
    root = run_dir(cfg)
    ckpt_root = root / "checkpoints"
    tok = load_tokenizer(t.base_model)
    examples, data_info = build_examples(cfg, tok, data_path)
    examples, heldout = tracking.split_heldout(examples, t.eval_examples, t.seed)
    log(f"[train] effective batch {t.batch_size} = {t.per_device_batch_size} per device x "
        f"{accum} accumulation x {world} process(es)")
    log(f"[train] data: {data_info['skillmix_examples']} skill-mix examples "
        f"({data_info['truncated']} truncated, {data_info['dropped']} dropped), "
        f"{data_info['pretrain_examples']} pre-training chunks")

    model = _load_model(cfg, accelerator)
    precision = precision_for(t.precision)
    log(f"[train] precision {precision}" + (" with loss scaling (this GPU has no bf16)"
                                             if precision == "fp16" else ""))
    _, attention_warning = choose_attention(t.attention, cuda=cuda)
    warnings = [attention_warning] if attention_warning else []
    for w in warnings:
        log(f"[train] WARN: {w}")
    sharding = {"FSDP": "fsdp", "DEEPSPEED": "deepspeed"}.get(accelerator.distributed_type.name,
                                                               "none")
    est = estimate_for_config(cfg, processes=world, sharding=sharding, cuda=cuda,
                              flash=_attention_kind(model) == "flash",
                              shape=model_shape(model.config, t.base_model))
    log("[train] " + format_estimate(est))
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    probe_set = [e for e in examples if e.source == "skillmix"][:probe]
    if probe_set:
        model.to(accelerator.device)
    probe_start = mean_loss(model, probe_set, pad_id=pad_id) if probe_set else None

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _optimizer(cfg, params, cuda)
    # Updates actually applied (under DeepSpeed the engine steps this optimiser itself).
    updates = [0]
    optimizer.register_step_post_hook(lambda *_: updates.__setitem__(0, updates[0] + 1))
    warm = t.warmup_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warm) if warm > 0 else 1.0)
    # The scheduler is not prepared: accelerate would step it once per process.
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    kind = _attention_kind(accelerator.unwrap_model(model))
    fsdp = accelerator.distributed_type.name == "FSDP"
    dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())

    history: list[dict] = []
    start = 0
    last = ckpt.latest_checkpoint(ckpt_root) if resume else None
    # What must not change between a checkpoint and its resume (steps may grow).
    fingerprint = settings_fingerprint(cfg)
    if last is not None:
        state = ckpt.load_checkpoint(accelerator, model, optimizer, scheduler, last)
        if state.get("fingerprint") not in (None, fingerprint):
            raise SkillmixError(f"the checkpoint {last} was made with other training settings; "
                                "use --restart to start again", field="train")
        start, history = state["step"], state["history"]
        updates[0] = 0   # loading a sharded optimiser state runs one empty step to build it
        log(f"[train] resumed from {last} at step {start}")
    elif accelerator.is_main_process and ckpt_root.exists() and not resume:
        import shutil

        shutil.rmtree(ckpt_root)
    if last is None and sharding == "deepspeed" and t.mode == "full":
        # ZeRO-3 built its fp32 masters from the compute-dtype copy; start from the checkpoint's.
        missing = exact_master_weights(accelerator.unwrap_model(model), t.base_model)
        if missing:
            warnings.append(f"{len(missing)} trainable tensors are not in the checkpoint under "
                            f"their names (e.g. {missing[0]}): their fp32 masters were built "
                            "from the compute-dtype weights")
            log(f"[train] WARN: {warnings[-1]}")
    accelerator.wait_for_everyone()

    totals = {"real": 0, "total": 0, "seconds": 0.0}
    tracker = tracking.Tracker(t.report_to, root, settings_fingerprint(cfg), accelerator.is_main_process,
                               run_name=f"{cfg.name}/{run_name(cfg)}")
    for step in range(start, t.steps):
        t0 = time.perf_counter()
        idx = step_indices(step, t.batch_size, len(examples), t.seed)
        micro = [[examples[i] for i in mb]
                 for mb in rank_micro_batches(idx, t.per_device_batch_size, world, rank)]
        batches = [_micro_batch(mb, cfg, pad_id, kind, dtype) for mb in micro]
        # Normalise by the answer tokens of the whole step on every rank: DDP then averages.
        counts = torch.tensor([sum(b.n_labels for b in batches), sum(b.n_real for b in batches),
                               sum(b.n_total for b in batches)], device=accelerator.device)
        counts = accelerator.reduce(counts, reduction="sum")
        n_labels = max(int(counts[0]), 1)
        step_loss = torch.zeros((), device=accelerator.device)
        for b in batches:
            b = b.to(accelerator.device)
            # accumulate(): no gradient all-reduce until the step's last micro-batch (DDP
            # no_sync; DeepSpeed's own accumulation boundary). Not under FSDP: its no_sync keeps
            # an unsharded gradient copy. backward() divides by accum and the ranks' gradients
            # are averaged; both are undone here, the step's answer tokens normalise.
            sync = contextlib.nullcontext() if fsdp else accelerator.accumulate(model)
            with sync:
                with accelerator.autocast():
                    loss_sum = answer_loss(model, b)
                accelerator.backward(loss_sum * (world * accum / n_labels))
            step_loss += loss_sum.detach()
        # The global norm before clipping, under every launcher (FSDP's is over the shards;
        # DeepSpeed clips inside its step and reports it); max_grad_norm 0 only measures.
        gnorm = accelerator.clip_grad_norm_(model.parameters(), t.max_grad_norm or float("inf"))
        lr = scheduler.get_last_lr()[0]          # the rate this step uses (read before stepping)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if gnorm is not None:
            gnorm = float(gnorm.full_tensor() if hasattr(gnorm, "full_tensor") else gnorm)
        step_loss = accelerator.reduce(step_loss, reduction="sum").item() / n_labels
        dt = time.perf_counter() - t0
        totals["real"] += int(counts[1])
        totals["total"] += int(counts[2])
        totals["seconds"] += dt
        history.append({"step": step + 1, "loss": step_loss, "lr": lr, "grad_norm": gnorm,
                        "real_tokens": int(counts[1]), "tokens": int(counts[2]), "seconds": dt})
        tracker.log(step + 1, {"train/loss": step_loss, "train/lr": lr, "train/grad_norm": gnorm,
                               "train/tokens_per_second": int(counts[1]) / dt})
        if heldout and t.eval_every and ((step + 1) % t.eval_every == 0 or step + 1 == t.steps):
            # The bare model: a DDP wrapper has no .config, and evaluation needs no gradient sync.
            history[-1]["eval_loss"] = mean_loss(accelerator.unwrap_model(model), heldout,
                                                 pad_id=pad_id, packed=t.packing)
            tracker.log(step + 1, {"eval/loss": history[-1]["eval_loss"]})
        log(f"[train] step {step + 1}/{t.steps} loss {step_loss:.4f} lr {lr:.2e} "
            f"{int(counts[1]) / dt:.0f} real tok/s")
        if t.checkpoint_every and (step + 1) % t.checkpoint_every == 0 and step + 1 < t.steps:
            ckpt.save_checkpoint(accelerator, model, optimizer, scheduler, root=ckpt_root,
                                 step=step + 1,
                                 state={"history": history, "fingerprint": fingerprint})
            if accelerator.is_main_process:  # the curve so far, readable while training runs
                (root / "loss.json").write_text(json.dumps(history, indent=1))

    tracker.close()
    unwrapped = accelerator.unwrap_model(model)
    probe_end = mean_loss(unwrapped, probe_set, pad_id=pad_id) if probe_set else None
    summary = {
        "run": run_name(cfg), "mode": t.mode, "base_model": t.base_model, "steps": t.steps,
        "settings": fingerprint,
        "resumed_from_step": start if last is not None else None,
        "effective_batch": t.batch_size, "per_device_batch_size": t.per_device_batch_size,
        "accumulation_steps": accum, "processes": world, "optimizer_steps": updates[0],
        "max_grad_norm": t.max_grad_norm,
        "distributed_type": accelerator.distributed_type.name,
        "device": accelerator.device.type, "attention": kind, "packing": t.packing,
        "precision": precision, "warnings": warnings,
        "optimizer": type(optimizer.optimizer).__name__ if hasattr(optimizer, "optimizer")
        else type(optimizer).__name__,
        "real_token_fraction": totals["real"] / totals["total"] if totals["total"] else None,
        "tokens_per_second": totals["real"] / totals["seconds"] if totals["seconds"] else None,
        "tokens_per_second_incl_padding":
            totals["total"] / totals["seconds"] if totals["seconds"] else None,
        "final_loss": history[-1]["loss"] if history else None,
        "probe_loss_start": probe_start, "probe_loss_end": probe_end,
        "memory_estimate_gib": round(est["total"], 2), "code_version": git_commit(),
        **data_info,
    }
    write_outputs(cfg, accelerator, model, tok, history, summary)
    main = accelerator.is_main_process
    del model, optimizer, unwrapped
    accelerator.free_memory()
    accelerator.end_training()   # the process group ends here, on every rank
    if main and t.merge_adapter and t.mode != "full":
        # After the process group: the other ranks have exited, none waits on a barrier
        # through a 13B merge (an NCCL timeout), and the training memory is freed.

        merge_adapter(t.base_model, root / "adapter", root / "model")
    return summary
