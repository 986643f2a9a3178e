"""Run every benchmarks/bench_*.py, each in its own process, and print one table: what we
measured beside its baseline and the ratio. The same table, with the date, the machine, its
load and the package versions, goes to benchmarks/RESULTS.md.

    python -m benchmarks [--quick] [--only concurrency,training] [--no-write] [--timeout S]

`--quick` shortens every benchmark (fewer requests, steps, prompts) so that `make bench`
finishes in bounded time on a 2-core machine; the table says which mode made it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PACKAGES = ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "openai",
            "anthropic", "vllm")
# Per benchmark: extra arguments of a quick run (besides --quick) and a plain-words title.
EXTRA = {"bench_local_generation.py": ["--threads", "1"], "bench_training.py": ["--threads", "1"]}


def machine() -> dict:
    """Where the numbers came from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = "none"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except ImportError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True).stdout.strip() or "unknown"
    return {"cpu": f"{cpu}, {os.cpu_count()} logical CPUs", "gpu": gpu,
            "os": platform.platform(), "python": platform.python_version(),
            "versions": versions, "commit": commit}


def fmt(x) -> str:
    return "-" if x is None else f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


def table(rows: list[dict]) -> list[str]:
    """Markdown table lines (also what the terminal gets)."""
    out = ["| benchmark | measured | ours | baseline | baseline value | ratio | unit | notes |",
           "|---|---|---:|---|---:|---:|---|---|"]
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"**{r['ratio']:.2f}**"
        out.append(f"| {r['bench']} | {r['what']} | {fmt(r['ours'])} | {r['baseline_name']} | "
                   f"{fmt(r['baseline'])} | {ratio} | {r['unit']} | {r['note']} |")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs of every benchmark")
    ap.add_argument("--only", help="comma-separated names, e.g. concurrency,rate_limits")
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/RESULTS.md")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark")
    args = ap.parse_args(argv)
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
    started = dt.datetime.now(dt.timezone.utc)
    where = machine()  # at the start: the commit that is measured
    load_before = os.getloadavg()
    rows, failed, commands = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-") as work:
        for script in scripts:
            out = Path(work) / f"{script.stem}.json"
            extra = (["--quick"] + EXTRA.get(script.name, [])) if args.quick else []
            cmd = [sys.executable, str(script), *extra, "--json", str(out)]
            commands.append(" ".join(["python", f"benchmarks/{script.name}", *extra]))
            print(f"== {script.name} {' '.join(extra)}", flush=True)
            try:
                code = subprocess.run(cmd, cwd=ROOT, timeout=args.timeout).returncode
            except subprocess.TimeoutExpired:
                code = "timeout"
            if code != 0 or not out.exists():
                failed.append(f"{script.name} ({code})")
                continue
            rows += json.loads(out.read_text())
    load_after = os.getloadavg()
    lines = table(rows)
    print()
    print("\n".join(lines))
    if failed:
        print("failed:", ", ".join(failed))
    if not args.no_write and rows:
        m = where
        versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        load = (f"1-minute load average {load_before[0]:.2f} at the start, "
                f"{load_after[0]:.2f} at the end")
        doc = [
            "# Benchmark results",
            "",
            "Written by `make bench` (`python -m benchmarks`); do not edit by hand, run it again.",
            "Each row compares what we measured with its baseline; the ratio is ours / baseline",
            "(above 1 is better for us). Benchmarks and their baselines are described at the top",
            "of each `benchmarks/bench_*.py`.",
            "",
            f"- date: {started:%Y-%m-%d %H:%M} UTC"
            f" ({'quick runs' if args.quick else 'full runs'}), commit {m['commit']}",
            f"- machine: {m['cpu']}; GPU: {m['gpu']}; {m['os']}; Python {m['python']}",
            f"- load: {load} (other work on the machine slows every row; the ratios"
            " against latency-bound or rate-limit baselines are less sensitive than the rates)",
            f"- packages: {versions}",
            "",
            *lines,
            "",
            "Commands:",
            "",
            *[f"    {c}" for c in commands],
        ]
        if failed:
            doc += ["", "Failed or timed out: " + ", ".join(failed)]
        (HERE / "RESULTS.md").write_text("\n".join(doc) + "\n")
        print(f"wrote {HERE / 'RESULTS.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
