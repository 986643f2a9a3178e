"""What the benchmarks share: the loopback server in its own process, and result rows.

A row is one comparison: what we measured, the baseline beside it, and their ratio. Each
bench_*.py prints its rows and, with `--json PATH`, writes them for `python -m benchmarks`,
which prints every row in one table and writes benchmarks/RESULTS.md.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def row(bench: str, what: str, ours: float, baseline_name: str, baseline: float | None,
        unit: str, note: str = "", higher_is_better: bool = True) -> dict:
    """One comparison; `ratio` is ours / baseline (or baseline / ours when lower is better)."""
    ratio = None
    if baseline:
        ratio = ours / baseline if higher_is_better else baseline / ours if ours else None
    return {"bench": bench, "what": what, "ours": ours, "baseline_name": baseline_name,
            "baseline": baseline, "unit": unit, "ratio": ratio, "note": note}


def emit(rows: list[dict], json_path: str | None) -> None:
    """Print the rows; write them as JSON for the runner when asked."""
    for r in rows:
        base = "-" if r["baseline"] is None else f"{r['baseline']:.4g}"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"  {r['what']}: {r['ours']:.4g} {r['unit']} vs {r['baseline_name']} {base} "
              f"(ratio {ratio}) {r['note']}")
    if json_path:
        Path(json_path).write_text(json.dumps(rows))


@contextmanager
def fake_server(*args):
    """tests/llm/fake_server.py in its own process (it must not share our GIL); yields its URL."""
    server = subprocess.Popen([sys.executable, str(ROOT / "tests/llm/fake_server.py"),
                               *map(str, args)], stdout=subprocess.PIPE, text=True)
    try:
        yield server.stdout.readline().strip()
    finally:
        server.kill()
        server.wait()


def server_stats(url: str) -> dict:
    """The server's counters (admitted, refused, successes)."""
    with urllib.request.urlopen(url + "/stats") as resp:
        return json.loads(resp.read())


def api_backend(provider: str, url: str, **options):
    """A real-SDK backend of `provider` pointed at the loopback server, cache and bar off."""
    from skillmix_utils.llm import get_backend

    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key")
    os.environ.setdefault("ANTHROPIC_API_KEY", "sk-ant-bench-not-a-real-key")
    spec = "openai:gpt-4o-mini" if provider == "openai" else "anthropic:claude-3-haiku-20240307"
    options.setdefault("use_cache", False)
    options.setdefault("progress", False)
    return get_backend(spec, base_url=url + "/v1" if provider == "openai" else url, **options)
