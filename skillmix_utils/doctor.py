"""`skillmix doctor`: is this machine ready to train and serve the student? One table.

    skillmix doctor [--model smollm2-135m-instruct] [--steps 3]

Versions first (torch, CUDA, flash-attn, bitsandbytes, vllm, deepspeed, ...), then checks, each
PASS, FAIL or SKIP with the reason:
- flash-attn 2: the student loads with attn_implementation="flash_attention_2" (GPU);
- packed loss: a packed micro-batch's loss equals the examples' losses one at a time (no
  cross-example leakage; on a GPU through the kernel training uses, flash-attn's varlen path);
- LoRA steps / QLoRA steps: a few optimiser steps, tokens/s, model-FLOPs utilisation (against
  the GPU's dense bf16 peak) and peak memory against the estimate (GPU; QLoRA needs CUDA);
- vLLM parity: vLLM and transformers + peft agree on greedy outputs (GPU with vllm).
On a CPU it runs what it can (packed loss, a LoRA step) and says what it skipped. The exit
status is 1 when any check failed.
"""
from __future__ import annotations

import importlib.metadata
import time
from dataclasses import dataclass

from skillmix_utils.llm.models import load_causal_lm, load_tokenizer
from skillmix_utils.llm.vllm_backend import parity_check
from skillmix_utils.stages.train.memory import estimate_memory, model_shape
from skillmix_utils.stages.train.pretrain import builtin_corpus, pretrain_examples

# Dense bf16 TFLOP/s by device name (for MFU); an unknown GPU gets no MFU.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0,
               "A10": 125.0, "RTX 4090": 165.0, "RTX 3090": 71.0, "V100": 125.0}


@dataclass
class Check:
    name: str
    status: str      # PASS, FAIL, SKIP
    detail: str


def versions() -> dict[str, str]:
    """Installed versions of what training and serving depend on."""
    out = {}
    for pkg in ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "flash-attn",
                "deepspeed", "vllm"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    import torch

    out["CUDA"] = (f"{torch.version.cuda} ({torch.cuda.get_device_name(0)}, "
                   f"{torch.cuda.get_device_properties(0).total_memory / 1024 ** 3:.0f} GiB)"
                   if torch.cuda.is_available() else "no CUDA device")
    return out


def _examples(tok, n_tokens: int = 96):

    return pretrain_examples(builtin_corpus(), tok, n_tokens=n_tokens, chunk_len=n_tokens // 3)


def check_packed_loss(model_name: str, cuda: bool) -> Check:
    """Packed loss == one-at-a-time loss, through the attention kernel training would use."""
    import torch

    from skillmix_utils.stages.train.packing import collate, summed_loss  # heavy: torch

    tok = load_tokenizer(model_name)
    lm = load_causal_lm(model_name, dtype="bfloat16" if cuda else "float32")
    flash = False
    if cuda:
        lm = lm.to("cuda")
        try:
            lm.set_attn_implementation("flash_attention_2")
            flash = True
        except (ImportError, ValueError):
            pass
    lm.eval()
    exs = _examples(tok)
    dev = next(lm.parameters()).device
    with torch.no_grad():
        one = sum(summed_loss(lm(**collate([e], flash=flash).to(dev).model_inputs()).logits,
                              collate([e]).labels.to(dev)).item() for e in exs)
        b = collate(exs, packed=True, flash=flash, mask_dtype=torch.bool).to(dev)
        packed = summed_loss(lm(**b.model_inputs()).logits, b.labels).item()
    rel = abs(packed - one) / max(abs(one), 1e-9)
    tol = 2e-2 if cuda else 1e-4       # bf16 kernels differ in summation order
    kind = "flash-attn varlen" if flash else "sdpa + block mask"
    return Check("packed loss", "PASS" if rel <= tol else "FAIL",
                 f"{kind}: packed {packed:.4f} vs one at a time {one:.4f} (rel {rel:.1e})")


def check_flash(model_name: str, cuda: bool) -> Check:
    if not cuda:
        return Check("flash-attn 2 load", "SKIP", "needs a CUDA GPU")

    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return Check("flash-attn 2 load", "FAIL",
                     "flash-attn is not installed (pip install flash-attn --no-build-isolation)")
    lm = load_causal_lm(model_name, dtype="bfloat16").to("cuda")
    lm.set_attn_implementation("flash_attention_2")
    impl = lm.config._attn_implementation
    return Check("flash-attn 2 load", "PASS" if "flash" in impl else "FAIL", f"attention {impl}")


def check_steps(model_name: str, mode: str, cuda: bool, steps: int = 3) -> Check:
    """A few optimiser steps of `mode` on packed micro-batches: tokens/s, MFU, peak memory."""
    import torch

    from skillmix_utils.stages.train.packing import collate, summed_loss  # heavy: torch

    name = f"{'QLoRA' if mode == 'qlora' else 'LoRA'} steps"
    if mode == "qlora" and not cuda:
        return Check(name, "SKIP", "QLoRA's paged 8-bit optimiser needs CUDA "
                     "(tests/train/test_modes.py covers NF4 on the CPU)")
    from peft import LoraConfig, get_peft_model

    tok = load_tokenizer(model_name)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    if mode == "qlora":
        from peft import prepare_model_for_kbit_training

        lm = load_causal_lm(model_name, quantization="nf4", device_map={"": 0})
        lm = prepare_model_for_kbit_training(lm, use_gradient_checkpointing=True)
    else:
        lm = load_causal_lm(model_name, dtype="bfloat16" if cuda else "float32")
        lm = lm.to("cuda" if cuda else "cpu")
    flash = False
    if cuda:
        try:
            lm.set_attn_implementation("flash_attention_2")
            flash = True
        except (ImportError, ValueError):
            pass
    lm = get_peft_model(lm, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear",
                                       task_type="CAUSAL_LM"))
    lm.train()
    params = [p for p in lm.parameters() if p.requires_grad]
    if mode == "qlora":
        import bitsandbytes as bnb

        opt = bnb.optim.PagedAdamW8bit(params, lr=1e-4)
    else:
        opt = torch.optim.AdamW(params, lr=1e-4)
    exs = _examples(tok, n_tokens=2048 if cuda else 256)
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


def check_vllm(model_name: str, cuda: bool) -> Check:
    if not cuda:
        return Check("vLLM parity", "SKIP", "needs a CUDA GPU")
    try:
        import vllm  # noqa: F401
    except ImportError:
        return Check("vLLM parity", "SKIP", "vllm is not installed (pip install 'skillmix[vllm]')")

    prompts = ["Write one sentence about bees.", "Name three colours.", "What is 2 + 2?"]
    r = parity_check(model_name, None, prompts, max_tokens=24,
                     engine_options={"gpu_memory_utilization": 0.5})
    return Check("vLLM parity", "PASS" if r["match"] >= 0.6 else "FAIL",
                 f"{r['match']:.0%} of {len(prompts)} greedy outputs equal")


def run_checks(model_name: str, steps: int = 3) -> list[Check]:
    """Every check, in order; an exception in one is that check's FAIL, not the end."""
    import torch

    cuda = torch.cuda.is_available()
    out = []
    for fn, args in ((check_flash, (model_name, cuda)), (check_packed_loss, (model_name, cuda)),
                     (check_steps, (model_name, "lora", cuda, steps)),
                     (check_steps, (model_name, "qlora", cuda, steps)),
                     (check_vllm, (model_name, cuda))):
        try:
            out.append(fn(*args))
        except Exception as exc:  # noqa: BLE001 - a broken check is reported, the rest still run
            label = {check_flash: "flash-attn 2 load", check_packed_loss: "packed loss",
                     check_vllm: "vLLM parity"}.get(fn) or f"{args[1]} steps"
            out.append(Check(label, "FAIL", f"{type(exc).__name__}: {exc}"[:300]))
    return out


def table(vers: dict[str, str], checks: list[Check]) -> str:
    """Versions and checks as one plain-text table."""
    rows = [(k, "", v) for k, v in vers.items()] + [(c.name, c.status, c.detail) for c in checks]
    w0 = max(len(r[0]) for r in rows)
    lines = [f"{'item':<{w0}}  {'check':<5}  detail", f"{'-' * w0}  -----  ------"]
    lines += [f"{a:<{w0}}  {b:<5}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def main(model_name: str = "smollm2-135m-instruct", steps: int = 3) -> int:
    """Print the table; 1 if any check failed, else 0."""
    vers = versions()
    checks = run_checks(model_name, steps)
    print(table(vers, checks))
    skipped = [c.name for c in checks if c.status == "SKIP"]
    if skipped:
        print(f"skipped: {', '.join(skipped)} (see detail)")
    return 1 if any(c.status == "FAIL" for c in checks) else 0
