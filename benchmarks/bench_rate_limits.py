"""Throughput under a provider's rate limits, and how many requests it refuses.

    python benchmarks/bench_rate_limits.py [--rpm 1200] [--tpm 60000] [--seconds 8] [--provider both]

The loopback server (its own process, 200 ms latency) enforces a requests-per-minute and a
tokens-per-minute limit as token buckets holding one second's worth (providers may enforce a
per-minute limit over such short periods), refuses what exceeds them with a 429, and sends
the provider's rate-limit headers. Two runs per provider, concurrency 32:

- rpm-bound: small requests, the requests limit binds; the client is told nothing (no rpm or
  tpm in its config) and learns the limits from the headers alone;
- tpm-bound: requests of ~170 tokens with max_tokens 200, the tokens limit binds; the client
  is given the limits a user would copy from their account page.

After a warm-up of a few seconds (the server's full buckets would flatter the rate), a timed
call's rate is compared with the limit; refusals are counted over the whole run, warm-up
included. The SDK retries a 429 after its Retry-After, so refusals cost time, not results.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import api_backend, emit, fake_server, row, server_stats  # noqa: E402

TEXT = "Write a short paragraph that shows the skill of metaphor on the topic of tides. "


def run(provider: str, rpm: float, tpm: float, seconds: float, bound: str) -> dict:
    with fake_server(0.2, rpm, tpm, 1.0) as url:
        if bound == "rpm":
            be = api_backend(provider, url, concurrency=32)
            content, max_tokens = "q", 16
            rate = rpm / 60
        else:
            be = api_backend(provider, url, concurrency=32, rpm=rpm, tpm=tpm)
            content, max_tokens = TEXT * 2, 200
            rate = None

        def convs(tag, n):
            return [[{"role": "user", "content": f"{content} {tag} {i}"}] for i in range(n)]

        per_request = None
        if rate is None:  # tokens per request as the server counts them: input words + max_tokens
            import json
            per_request = len(json.dumps(convs("x", 1)[0]).split()) + max_tokens
            rate = tpm / 60 / per_request
        warm = int(rate * 3)
        res = be.chat(convs("warm", warm), temperature=0, max_tokens=max_tokens)
        n = max(8, int(rate * seconds))
        before = server_stats(url)
        t = time.perf_counter()
        res += be.chat(convs("timed", n), temperature=0, max_tokens=max_tokens)
        dt = time.perf_counter() - t
        after = server_stats(url)
        be.close()
    failed = sum(not r.ok for r in res)
    admitted_timed = after["admitted"] - before["admitted"]
    return {"rate": admitted_timed / dt, "limit_rate": rate, "refused": after["refused"],
            "sent": after["refused"] + after["admitted"], "failed": failed,
            "unit": "req/s" if per_request is None else f"req/s ({per_request} tokens each)"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rpm", type=float, default=1200)
    ap.add_argument("--tpm", type=float, default=300_000)
    ap.add_argument("--seconds", type=float, default=8.0, help="length of the timed call")
    ap.add_argument("--provider", choices=["openai", "anthropic", "both"], default="both")
    ap.add_argument("--quick", action="store_true", help="4-second timed calls")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds = 4.0
    rows = []
    for provider in (["openai", "anthropic"] if args.provider == "both" else [args.provider]):
        for bound, rpm, tpm in (("rpm", args.rpm, args.tpm * 10),
                                ("tpm", args.rpm * 10, args.tpm)):
            r = run(provider, rpm, tpm, args.seconds, bound)
            how = "limits from headers only" if bound == "rpm" else "limits in config + headers"
            rows.append(row("rate limits", f"{provider}, {bound}-bound ({how})", r["rate"],
                            f"the {bound} limit", r["limit_rate"], r["unit"],
                            note=f"refused {r['refused']}/{r['sent']} "
                                 f"({100 * r['refused'] / max(1, r['sent']):.2f}%), "
                                 f"failed {r['failed']}"))
    print(f"server: rpm {args.rpm:g} / tpm {args.tpm:g} (the other limit 10x), buckets of 1 s, "
          f"latency 200 ms; client concurrency 32")
    emit(rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
