"""`skillmix doctor --gpu`: the acceptance run a GPU user starts before paying for a study.

    skillmix doctor --gpu [--model smollm2-135m-instruct] [--steps 3] [--out FILE]

At most about 10 minutes on one GPU; checks still waiting when the time is spent are SKIPped
with that reason. In order: CUDA visible and torch built for it (a CPU build on a GPU machine
FAILs), the driver against torch's CUDA runtime, bf16 (else the fp16 path), NCCL across the
visible GPUs, an NF4 round trip and a paged 8-bit AdamW step (bitsandbytes), the project's own
trainer in LoRA, QLoRA (with save and resume) and full modes against the CPU
(`doctor.trainer_runs`), flash-attn's varlen path against sdpa on a packed batch, generation
through the hf: backend, tokens/s and MFU on a real-size packed micro-batch (8,192 tokens),
and vLLM parity (with the LoRA check's adapter) when vLLM is installed. Without CUDA the first
row FAILs and the rest are skipped.

`device="cpu"` (`--device cpu`) is a test hook: the checks that can run on a CPU run there with
small sizes (the trainer's "CPU reference" then checks the CPU against itself).
"""
from __future__ import annotations

import importlib.util
import shutil
import socket
import tempfile
import time
from pathlib import Path

from skillmix_utils.doctor.cuda import check_bf16, check_cuda, check_driver, flash_attn_state
from skillmix_utils.doctor.quick import check_steps, check_vllm, packed_losses
from skillmix_utils.doctor.report import Check, guarded
from skillmix_utils.doctor.trainer_runs import adapter_of, check_trainer
from skillmix_utils.llm.hf_backend import HFBackend

BUDGET_S = 10 * 60
# bitsandbytes' NF4 with 64-weight blocks keeps about 10% relative RMS error on Gaussian
# weights (16 levels placed at the normal's quantiles); more means the kernels are wrong.
NF4_MAX_REL_ERROR = 0.12


def check_nccl() -> Check:
    """An all_reduce over every visible GPU, one process each (SKIP with one GPU)."""
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp

    if not dist.is_nccl_available():
        return Check("NCCL", "FAIL", "this torch has no NCCL: multi-GPU training cannot run")
    version = ".".join(map(str, torch.cuda.nccl.version()))
    n = torch.cuda.device_count()
    if n < 2:
        return Check("NCCL", "SKIP", f"NCCL {version}; one GPU visible: no all_reduce to run")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.spawn(nccl_worker, args=(n, port), nprocs=n, join=False)
    deadline = time.monotonic() + 120
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            return Check("NCCL", "FAIL", f"all_reduce over {n} GPUs did not finish in 120 s "
                         "(peer-to-peer or the network interface: try NCCL_P2P_DISABLE=1)")
    return Check("NCCL", "PASS", f"NCCL {version}: all_reduce over {n} GPUs is right")


def nccl_worker(rank: int, world: int, port: int) -> None:
    """One process of `check_nccl` (module level: spawned processes import it)."""
    import torch
    import torch.distributed as dist

    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        x = torch.full((1024,), float(rank + 1), device="cuda")
        dist.all_reduce(x)
        want = world * (world + 1) / 2
        if not torch.allclose(x, torch.full_like(x, want)):
            raise RuntimeError(f"rank {rank}: all_reduce gave {x[0].item()}, not {want}")
    finally:
        dist.destroy_process_group()


def check_nf4(device: str) -> Check:
    """NF4 quantise -> dequantise keeps ~10% error, and the 4-bit matmul equals the matmul with
    the dequantised weights (within the compute dtype's rounding)."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as F
    import torch

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    g = torch.Generator().manual_seed(0)
    w = (0.02 * torch.randn(512, 1024, generator=g)).to(device=device, dtype=dtype)
    x = torch.randn(8, 1024, generator=g).to(device=device, dtype=dtype)
    q, state = F.quantize_4bit(w, quant_type="nf4", compress_statistics=True, blocksize=64)
    back = F.dequantize_4bit(q, state)
    err = ((back.float() - w.float()).norm() / w.float().norm()).item()
    y4 = bnb.matmul_4bit(x, q.t(), quant_state=state).float()
    yd = (x @ back.t()).float()
    mm = ((y4 - yd).norm() / yd.norm()).item()
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-4
    ok = err <= NF4_MAX_REL_ERROR and mm <= tol
    return Check("NF4 round trip", "PASS" if ok else "FAIL",
                 f"{device}: quantisation error {err:.3f} (at most {NF4_MAX_REL_ERROR}), "
                 f"4-bit matmul vs dequantised {mm:.1e} (at most {tol:.0e})")


def check_paged_adamw(device: str) -> Check:
    """A few steps of bitsandbytes' paged 8-bit AdamW (QLoRA's optimiser) against torch's AdamW
    on the same gradients: the same updates within the 8-bit states' error."""
    if device != "cuda":
        return Check("paged 8-bit AdamW", "SKIP", "paged optimisers need CUDA")
    import bitsandbytes as bnb
    import torch

    g = torch.Generator(device="cuda").manual_seed(0)
    start = torch.randn(128, 64, device="cuda", generator=g)   # >= 4096 values: 8-bit states
    a, b = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    lr = 1e-3
    ours = bnb.optim.PagedAdamW8bit([a], lr=lr, weight_decay=0.0)
    ref = torch.optim.AdamW([b], lr=lr, weight_decay=0.0)
    for _ in range(3):
        grad = torch.randn(start.shape, device="cuda", generator=g)
        a.grad, b.grad = grad.clone(), grad.clone()
        ours.step()
        ref.step()
    torch.cuda.synchronize()
    diff = ((a - b).norm() / (b - start).norm()).item()
    # 8-bit states (256 levels per block) move each update by a few per cent at most
    ok = diff <= 0.1 and torch.isfinite(a).all().item()
    return Check("paged 8-bit AdamW", "PASS" if ok else "FAIL",
                 f"3 steps: updates differ from torch AdamW's by {diff:.1e} (at most 0.1)")


def check_flash_varlen(model_name: str, cuda: bool) -> Check:
    """A packed micro-batch's loss through flash-attn's varlen path equals sdpa's with a
    block-diagonal mask (absent flash-attn: WARN; installed but broken: FAIL naming it)."""
    name = "flash-attn varlen vs sdpa"
    if not cuda:
        return Check(name, "SKIP", "needs a CUDA GPU")
    status, detail = flash_attn_state()
    if status != "PASS":
        return Check(name, status, detail)
    flash, one = packed_losses(model_name, True, flash=True)
    sdpa, _ = packed_losses(model_name, True, flash=False)
    rel = abs(flash - sdpa) / max(abs(sdpa), 1e-9)
    rel_one = abs(flash - one) / max(abs(one), 1e-9)
    ok = rel <= 2e-2 and rel_one <= 2e-2
    return Check(name, "PASS" if ok else "FAIL",
                 f"packed loss {flash:.4f} (flash varlen) vs {sdpa:.4f} (sdpa + mask), rel "
                 f"{rel:.1e}; vs one at a time rel {rel_one:.1e} (at most 2e-2)")


def check_generation(model_name: str, device: str) -> Check:
    """Greedy generation through the hf: backend on `device`: every prompt answered; tokens/s."""
    backend = HFBackend(model_name, device=device, use_cache=False, progress=False)
    prompts = [backend.render([{"role": "user", "content": p}]) for p in
               ("Write one sentence about bees.", "Name three colours.", "What is 2 + 2?")]
    t0 = time.perf_counter()
    replies = backend.generate(prompts, temperature=0, max_tokens=32)
    dt = time.perf_counter() - t0
    backend.close()
    ok = all(r.text for r in replies)
    tokens = sum(r.output_tokens for r in replies)
    return Check("HF generation", "PASS" if ok else "FAIL",
                 f"{device}: {len(replies)} prompts, {tokens} tokens, {tokens / dt:.0f} tokens/s"
                 + ("" if ok else "; an empty reply"))


def acceptance_plan(model_name: str, steps: int, cuda: bool, work: Path | None) -> dict:
    """The rows after the CUDA one: {name: the check as a call, or None when it cannot run
    here}; the trainer checks work in `work`."""
    dev = "cuda" if cuda else "cpu"
    vllm = importlib.util.find_spec("vllm") is not None
    return {
        "driver vs runtime": check_driver,
        "bf16": check_bf16,
        "NCCL": check_nccl if cuda else None,
        "NF4 round trip": lambda: check_nf4(dev),
        "paged 8-bit AdamW": lambda: check_paged_adamw(dev),
        "trainer lora": lambda: check_trainer(model_name, "lora", steps, work, cuda=cuda),
        "trainer qlora": lambda: check_trainer(model_name, "qlora", steps, work, cuda=cuda),
        "trainer full": lambda: check_trainer(model_name, "full", steps, work, cuda=cuda),
        "flash-attn varlen vs sdpa": lambda: check_flash_varlen(model_name, cuda),
        "HF generation": lambda: check_generation(model_name, dev),
        "throughput": lambda: check_steps(model_name, "lora", cuda, steps,
                                          n_tokens=8192 if cuda else 512, name="throughput"),
        # last (its engine takes a minute to start), with the adapter the LoRA trainer check
        # left: serving LoRA is what goes wrong silently
        "vLLM parity (LoRA)": (lambda: check_vllm(model_name, cuda,
                                                  adapter_of(work, model_name, steps, cuda)))
        if vllm and cuda else None,
    }


def run_gpu_checks(model_name: str, steps: int = 3, device: str | None = None,
                   budget_s: float = BUDGET_S) -> list[Check]:
    """The acceptance run's checks, in order (module docstring); `device="cpu"` is the test
    hook."""
    import torch

    cuda = torch.cuda.is_available() and device != "cpu"
    first = guarded("CUDA", check_cuda, required=device != "cpu")
    out = [first]
    if first.status == "FAIL" and device != "cpu":
        return out + [Check(n, "SKIP", "needs CUDA (see the CUDA row)")
                      for n in acceptance_plan(model_name, steps, cuda, None)]
    work = Path(tempfile.mkdtemp(prefix="skillmix-doctor-"))
    t0 = time.monotonic()
    try:
        for name, call in acceptance_plan(model_name, steps, cuda, work).items():
            if call is None:
                why = ("vllm is not installed (pip install 'skillmix[vllm]')" if cuda
                       else "needs a CUDA GPU")
                out.append(Check(name, "SKIP", why))
            elif cuda and time.monotonic() - t0 > budget_s:     # the CPU hook has no budget
                out.append(Check(name, "SKIP", f"the time budget ({budget_s / 60:.0f} min) "
                                 "is spent"))
            else:
                out.append(guarded(name, call))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out
