"""API client throughput against the latency-bound ideal, OpenAI and Anthropic backends.

    python benchmarks/bench_concurrency.py [--latency 0.2] [--requests 256] [--provider both]

The server (tests/llm/fake_server.py, in its own process so that it does not compete with the
client for the GIL) answers every request after a fixed latency, without faults or limits;
the cache is off, so every request reaches the server through the official SDK. The baseline
is the latency-bound ideal: a client with no overhead at all completes `concurrency` requests
per latency. At concurrency 1 the gap is the client's overhead per request. Each backend is
warmed up first (its event loop, SDK client and connections are kept between calls, as in a
study that makes thousands of calls).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import api_backend, emit, fake_server, row  # noqa: E402


def timed_chat(be, n: int, tag: str) -> float:
    convs = [[{"role": "user", "content": f"{tag} request {i}"}] for i in range(n)]
    t = time.perf_counter()
    res = be.chat(convs, temperature=0, max_tokens=16)
    dt = time.perf_counter() - t
    assert all(r.ok for r in res), [r.error for r in res if not r.ok][:3]
    return dt


def measure(provider: str, latency: float, n: int, reps: int) -> list[dict]:
    rows = []
    with fake_server(latency) as url:
        for conc, count in ((1, max(8, n // 8)), (32, n)):
            be = api_backend(provider, url, concurrency=conc)
            timed_chat(be, 2 * conc, f"warm-up c{conc}")
            best = min(timed_chat(be, count, f"c{conc} rep{r}") for r in range(reps))
            be.close()
            ideal_dt = math.ceil(count / conc) * latency
            overhead_ms = (best - ideal_dt) / math.ceil(count / conc) * 1000
            rows.append(row("client", f"{provider}, concurrency {conc:2d}, {count} requests",
                            count / best, "latency-bound ideal", count / ideal_dt, "req/s",
                            note=f"overhead {overhead_ms:.1f} ms per request"
                                 + (" in sequence" if conc == 1 else " per wave")))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--requests", type=int, default=256)
    ap.add_argument("--reps", type=int, default=2, help="repetitions; the best is kept")
    ap.add_argument("--provider", choices=["openai", "anthropic", "both"], default="both")
    ap.add_argument("--quick", action="store_true", help="128 requests, one repetition")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if args.quick:
        args.requests, args.reps = 128, 1
    rows = []
    for provider in (["openai", "anthropic"] if args.provider == "both" else [args.provider]):
        rows += measure(provider, args.latency, args.requests, args.reps)
    print(f"server latency {args.latency * 1000:.0f} ms; best of {args.reps}")
    emit(rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
