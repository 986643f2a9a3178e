"""The checks of a plain `skillmix doctor`: is this machine ready to train and serve? One table.

    skillmix doctor [--model smollm2-135m-instruct] [--steps 3]

Versions first (torch, CUDA, flash-attn, bitsandbytes, vllm, deepspeed, ...), then checks, each
PASS, WARN, FAIL or SKIP with the reason:
- CUDA and driver vs runtime (`doctor.cuda`): NVIDIA GPUs that torch cannot use FAIL;
- flash-attn 2: the student loads with attn_implementation="flash_attention_2" (GPU; absent is
  a WARN, installed but broken a FAIL naming the error);
- packed loss: a packed micro-batch's loss equals the examples' losses one at a time (no
  cross-example leakage; on a GPU through the kernel training uses, flash-attn's varlen path);
- LoRA steps / QLoRA steps: a few optimiser steps, tokens/s, model-FLOPs utilisation (against
  the GPU's dense bf16 peak) and peak memory against the estimate (GPU; QLoRA needs CUDA);
- vLLM parity: vLLM and transformers + peft agree on greedy outputs (GPU with vllm).
On a CPU it runs what it can (packed loss, a LoRA step) and says what it skipped. The exit
status is 1 when any check failed. `skillmix doctor --gpu` is the longer acceptance run
(`doctor.gpu`).
"""
from __future__ import annotations

import importlib.util
import time

from skillmix_utils.doctor.cuda import check_cuda, check_driver, flash_attn_state
from skillmix_utils.doctor.report import Check, guarded
from skillmix_utils.llm.models import load_causal_lm, load_tokenizer
from skillmix_utils.llm.vllm_backend import parity_check
from skillmix_utils.stages.train.memory import estimate_memory, model_shape
from skillmix_utils.stages.train.pretrain import builtin_corpus, pretrain_examples

# Dense bf16 TFLOP/s by device name (for MFU); an unknown GPU gets no MFU.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0,
               "A10": 125.0, "RTX 4090": 165.0, "RTX 3090": 71.0, "V100": 125.0}


def corpus_examples(tok, n_tokens: int = 96, chunk_len: int | None = None):
    """About `n_tokens` of the built-in corpus as examples of `chunk_len` tokens (loss on all)."""
    return pretrain_examples(builtin_corpus(), tok, n_tokens=n_tokens,
                             chunk_len=chunk_len or n_tokens // 3)


def packed_losses(model_name: str, cuda: bool, flash: bool) -> tuple[float, float]:
    """(summed loss of a packed micro-batch, sum of the same examples' losses one at a time):
    bf16 on the GPU (flash-attn's varlen path when `flash`, else sdpa with a block mask),
    fp32 on the CPU."""
    import torch

    from skillmix_utils.stages.train.packing import collate, summed_loss  # heavy: torch

    tok = load_tokenizer(model_name)
    lm = load_causal_lm(model_name, dtype="bfloat16" if cuda else "float32")
    if cuda:
        lm = lm.to("cuda")
    if flash:
        lm.set_attn_implementation("flash_attention_2")
    lm.eval()
    exs = corpus_examples(tok)
    dev = next(lm.parameters()).device
    with torch.no_grad():
        one = sum(summed_loss(lm(**collate([e], flash=flash).to(dev).model_inputs()).logits,
                              collate([e]).labels.to(dev)).item() for e in exs)
        b = collate(exs, packed=True, flash=flash, mask_dtype=torch.bool).to(dev)
        packed = summed_loss(lm(**b.model_inputs()).logits, b.labels).item()
    return packed, one


def check_packed_loss(model_name: str, cuda: bool) -> Check:
    """Packed loss == one-at-a-time loss, through the attention kernel training would use
    (flash-attn's varlen path on a GPU that has it, else sdpa with a block-diagonal mask)."""
    flash = cuda and flash_attn_state()[0] == "PASS"
    packed, one = packed_losses(model_name, cuda, flash)
    rel = abs(packed - one) / max(abs(one), 1e-9)
    tol = 2e-2 if cuda else 1e-4       # bf16 kernels differ in summation order
    kind = "flash-attn varlen" if flash else "sdpa + block mask"
    return Check("packed loss", "PASS" if rel <= tol else "FAIL",
                 f"{kind}: packed {packed:.4f} vs one at a time {one:.4f} (rel {rel:.1e})")


def check_flash(model_name: str, cuda: bool) -> Check:
    """The student loads with flash-attention 2 (absent: WARN; broken: FAIL naming the error)."""
    if not cuda:
        return Check("flash-attn 2 load", "SKIP", "needs a CUDA GPU")
    status, detail = flash_attn_state()
    if status != "PASS":
        return Check("flash-attn 2 load", status, detail)
    lm = load_causal_lm(model_name, dtype="bfloat16").to("cuda")
    lm.set_attn_implementation("flash_attention_2")
    impl = lm.config._attn_implementation
    return Check("flash-attn 2 load", "PASS" if "flash" in impl else "FAIL", f"attention {impl}")


def check_steps(model_name: str, mode: str, cuda: bool, steps: int = 3,
                n_tokens: int | None = None, name: str | None = None) -> Check:
    """A few optimiser steps of `mode` on one packed micro-batch of `n_tokens` (2,048 on a GPU,
    256 on the CPU): tokens/s, MFU, peak memory against the estimate."""
    import torch

    from skillmix_utils.stages.train.packing import collate, summed_loss  # heavy: torch

    name = name or f"{'QLoRA' if mode == 'qlora' else 'LoRA'} steps"
    if mode == "qlora" and not cuda:
        return Check(name, "SKIP", "QLoRA's paged 8-bit optimiser needs CUDA "
                     "(tests/stages/train/test_modes.py covers NF4 on the CPU)")
    from peft import LoraConfig, get_peft_model

    tok = load_tokenizer(model_name)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    if mode == "qlora":
        from peft import prepare_model_for_kbit_training

        lm = load_causal_lm(model_name, quantization="nf4", device_map={"": 0})
        # Non-reentrant, as the trainer: the reentrant kind needs an input that requires grad.
        lm = prepare_model_for_kbit_training(
            lm, use_gradient_checkpointing=True,
            gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        lm = load_causal_lm(model_name, dtype="bfloat16" if cuda else "float32")
        lm = lm.to("cuda" if cuda else "cpu")
    flash = False
    if cuda and flash_attn_state()[0] == "PASS":
        lm.set_attn_implementation("flash_attention_2")
        flash = True
    lm = get_peft_model(lm, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear",
                                       task_type="CAUSAL_LM"))
    lm.train()
    params = [p for p in lm.parameters() if p.requires_grad]
    if mode == "qlora":
        import bitsandbytes as bnb

        opt = bnb.optim.PagedAdamW8bit(params, lr=1e-4)
    else:
        opt = torch.optim.AdamW(params, lr=1e-4)
    exs = corpus_examples(tok, n_tokens=n_tokens or (2048 if cuda else 256),
                          chunk_len=min(1024, n_tokens) if n_tokens else None)
    dev = next(lm.parameters()).device
    batch = collate(exs, packed=True, flash=flash, mask_dtype=torch.bool).to(dev)
    losses, tokens, seconds = [], 0, 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            loss = summed_loss(lm(**batch.model_inputs()).logits, batch.labels) / batch.n_labels
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t0
        tokens += batch.n_real
        losses.append(loss.item())
    ok = all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    tps = tokens / seconds
    shape = model_shape(lm.config, model_name)
    detail = f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, {tps:.0f} tokens/s"
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 1024 ** 3
        est = estimate_memory(shape, mode, tokens_per_device=batch.n_real, lora_r=16,
                              gradient_checkpointing=mode == "qlora", overhead_gib=0.0)["total"]
        gpu = torch.cuda.get_device_name(0)
        peak_tf = next((v for k, v in PEAK_TFLOPS.items() if k in gpu), None)
        flops = (4 + (2 if mode == "qlora" else 0)) * shape.params * tps
        mfu = f"MFU {flops / (peak_tf * 1e12):.1%}" if peak_tf else "MFU n/a (unknown GPU)"
        detail += f", {mfu}, peak {peak:.2f} GiB vs estimate {est:.2f} GiB"
    return Check(name, "PASS" if ok else "FAIL", detail)


def check_vllm(model_name: str, cuda: bool, adapter: str | None = None) -> Check:
    """vLLM and transformers (+ peft) agree on greedy decodings (`parity_check`: same dtype,
    adapter unmerged, within the dtype's rounding): every prompt must agree."""
    name = "vLLM parity" + (" (LoRA)" if adapter else "")
    if not cuda:
        return Check(name, "SKIP", "needs a CUDA GPU")
    if importlib.util.find_spec("vllm") is None:
        return Check(name, "SKIP", "vllm is not installed (pip install 'skillmix[vllm]')")
    prompts = ["Write one sentence about bees.", "Name three colours.", "What is 2 + 2?"]
    r = parity_check(model_name, adapter, prompts, max_tokens=24,
                     engine_options={"gpu_memory_utilization": 0.5, "enforce_eager": True,
                                     "max_model_len": 1024})
    why = next((w for w in r["diverged"] if w), None)
    return Check(name, "PASS" if r["match"] == 1.0 else "FAIL",
                 f"{r['match']:.0%} of {len(prompts)} greedy decodings agree ({r['dtype']})"
                 + (f"; {why}" if why else ""))


def run_checks(model_name: str, steps: int = 3) -> list[Check]:
    """Every check, in order; an exception in one is that check's FAIL, not the end."""
    import torch

    cuda = torch.cuda.is_available()
    return [guarded("CUDA", check_cuda), guarded("driver vs runtime", check_driver),
            guarded("flash-attn 2 load", check_flash, model_name, cuda),
            guarded("packed loss", check_packed_loss, model_name, cuda),
            guarded("LoRA steps", check_steps, model_name, "lora", cuda, steps),
            guarded("QLoRA steps", check_steps, model_name, "qlora", cuda, steps),
            guarded("vLLM parity", check_vllm, model_name, cuda)]
