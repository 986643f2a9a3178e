"""Throughput of the API backend at concurrency 1 vs 32 against the loopback server.

    python benchmarks/bench_concurrency.py [--latency 0.2] [--requests 128] [--provider openai]

The server (tests/llm/fake_server.py, in its own process so that it does not compete with the
client for the GIL) answers every request after a fixed latency, without faults; the cache is
off, so every request reaches the server. Prints requests/s at both settings and their ratio.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(provider: str, url: str, concurrency: int, n: int, tag: str) -> float:
    from skillmix_utils.llm import get_backend

    spec = "openai:gpt-4o-mini" if provider == "openai" else "anthropic:claude-3-haiku-20240307"
    be = get_backend(spec, base_url=url, use_cache=False, concurrency=concurrency, progress=False)
    convs = [[{"role": "user", "content": f"{tag} request {i}"}] for i in range(n)]
    t = time.perf_counter()
    res = be.chat(convs, temperature=0, max_tokens=16)
    dt = time.perf_counter() - t
    assert all(r.ok for r in res), [r.error for r in res if not r.ok][:3]
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--requests", type=int, default=128)
    ap.add_argument("--provider", choices=["openai", "anthropic"], default="openai")
    args = ap.parse_args()
    import subprocess

    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key")
    os.environ.setdefault("ANTHROPIC_API_KEY", "sk-ant-bench-not-a-real-key")
    server = subprocess.Popen([sys.executable, str(ROOT / "tests/llm/fake_server.py"),
                               str(args.latency)], stdout=subprocess.PIPE, text=True)
    base = server.stdout.readline().strip()
    url = base + "/v1" if args.provider == "openai" else base
    try:
        run(args.provider, url, 4, 8, "warm-up")
        seq = run(args.provider, url, 1, max(8, args.requests // 4), "c1")
        par = run(args.provider, url, 32, args.requests, "c32")
    finally:
        server.kill()
        server.wait()
    print(f"{args.provider} backend, server latency {args.latency * 1000:.0f} ms, "
          f"{args.requests} requests at concurrency 32")
    print(f"concurrency  1: {seq:8.1f} requests/s")
    print(f"concurrency 32: {par:8.1f} requests/s")
    print(f"ratio: {par / seq:.1f}x")


if __name__ == "__main__":
    main()
