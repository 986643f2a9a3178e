"""The embedded model's greedy generation on the CPU: batched vs one prompt at a time.

    python benchmarks/bench_local_generation.py [--prompts 8] [--max-tokens 32] [--batch-size 8] [--threads N]

Same prompts, same greedy settings, cache off; asserts that both give the same texts and
prints output tokens/s for both and the ratio. On a CUDA machine with vllm installed it adds
vLLM (`vllm:` backend) on the same prompts beside batched transformers; elsewhere it prints a
line saying that vLLM was skipped and why.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TOPICS = ["the sea", "bread", "a bicycle", "winter", "chess", "a library", "rain", "coffee",
          "mountains", "a lighthouse", "bees", "the moon", "trains", "gardens", "music", "clocks"]


def timed(backend, convs, max_tokens):
    t = time.perf_counter()
    res = backend.chat(convs, temperature=0, max_tokens=max_tokens)
    dt = time.perf_counter() - t
    assert all(r.ok for r in res), [r.error for r in res if not r.ok][:3]
    return res, sum(r.output_tokens for r in res) / dt, dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (1 is faster on a busy shared machine)")
    ap.add_argument("--quick", action="store_true", help="4 prompts, 16 tokens")
    ap.add_argument("--json", help="write the table rows here")
    args = ap.parse_args()
    if args.quick:
        args.prompts, args.max_tokens = 4, 16
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from skillmix_utils.llm import get_backend
    from skillmix_utils.llm.models import DEFAULT_MODEL

    spec = f"hf:{DEFAULT_MODEL}"
    convs = [[{"role": "user", "content": f"Write two sentences about {TOPICS[i % len(TOPICS)]}."
               + " Be vivid." * (i % 3)}] for i in range(args.prompts)]
    one = get_backend(spec, use_cache=False, batch_size=1, progress=False)
    many = get_backend(spec, use_cache=False, batch_size=args.batch_size, progress=False)
    one.load()
    one.chat(convs[:1], temperature=0, max_tokens=4)  # warm-up
    single, tps_1, dt_1 = timed(one, convs, args.max_tokens)
    batched, tps_b, dt_b = timed(many, convs, args.max_tokens)
    same = [a.text for a in single] == [b.text for b in batched]
    print(f"{DEFAULT_MODEL} on the CPU ({torch.get_num_threads()} threads), {args.prompts} prompts, "
          f"max_tokens {args.max_tokens}, greedy")
    print(f"one at a time      : {tps_1:7.1f} tokens/s ({dt_1:.1f} s)")
    print(f"batched (size {args.batch_size:2d}) : {tps_b:7.1f} tokens/s ({dt_b:.1f} s)")
    print(f"ratio: {tps_b / tps_1:.1f}x; same outputs: {same}")
    assert same, "batched greedy output differs from one-at-a-time output"
    from benchmarks.common import emit, row

    rows = [row("generation", f"HF batched (size {args.batch_size}), {args.prompts} prompts x "
                f"{args.max_tokens} tokens, greedy", tps_b, "HF one prompt at a time", tps_1,
                "tokens/s", note=f"same outputs: {same}; torch threads {torch.get_num_threads()}")]
    vllm_rows, why = vllm_comparison(spec, convs, args.max_tokens, tps_b)
    print(why)
    emit(rows + vllm_rows, args.json)


def vllm_comparison(spec, convs, max_tokens, tps_hf) -> tuple[list[dict], str]:
    """vLLM beside batched transformers, when a GPU and vllm are there; (rows, a line)."""
    import importlib.util

    import torch

    from benchmarks.common import row

    if not torch.cuda.is_available():
        return [], "vLLM: skipped (no CUDA GPU on this machine)"
    if importlib.util.find_spec("vllm") is None:
        return [], "vLLM: skipped (vllm is not installed: pip install 'skillmix[vllm]')"
    from skillmix_utils.llm import get_backend

    model = spec.split(":", 1)[1]
    be = get_backend(f"vllm:{model}", use_cache=False, progress=False)
    be.chat(convs[:1], temperature=0, max_tokens=4)  # engine start-up is not timed
    _, tps_v, dt_v = timed(be, convs, max_tokens)
    return ([row("generation", f"vLLM, {len(convs)} prompts x {max_tokens} tokens, greedy",
                 tps_v, "HF batched", tps_hf, "tokens/s")],
            f"vLLM: {tps_v:.1f} tokens/s ({dt_v:.1f} s)")


if __name__ == "__main__":
    main()
