"""`skillmix run CONFIG --dry-run` on a grid prices a request once, however many grid runs ask it:
the response cache answers the repeats (the paper's base student, evaluated by every run)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE, TUNED = "student llama-2-13b-chat", "student llama-2-13b-chat-ft"
GRADERS = ("eval: grade (gpt-4)", "eval: grade (claude-3-opus)")


def usd(text: str) -> float:
    return float(text.replace(",", ""))


def plans(out: str) -> list[dict]:
    """Each stage plan printed: its title, calls per purpose, total, and the repeats left out."""
    found = []
    for block in re.split(r"^(?=skillmix (?:generate-data|evaluate) )", out, flags=re.M)[1:]:
        rows = {m.group(1).strip(): int(m.group(2)) for m in re.finditer(
            r"^\S+\s+(.+?)\s+(\d+)\s+\d+\s+\d+\s+[\d,.]+$", block, flags=re.M)}
        repeats = {m.group(1): (int(m.group(2)), usd(m.group(3))) for m in re.finditer(
            r"^\S+ (.+?): (\d+) more calls repeat .*?: \$([\d,.]+) not counted$", block, flags=re.M)}
        total = usd(re.search(r"^estimated total: \$([\d,.]+)", block, flags=re.M).group(1))
        found.append({"title": block.splitlines()[0], "rows": rows, "repeats": repeats,
                      "total": total})
    return found


def test_the_paper_grid_prices_the_base_students_requests_once(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "skillmix_utils.cli", "run",
                           str(ROOT / "configs" / "paper-llama2-13b.yaml"), "--dry-run",
                           "--set", f"output_dir={tmp_path / 'out'}"],
                          env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data, *runs = plans(proc.stdout)
    assert data["title"].startswith("skillmix generate-data") and len(runs) == 4
    grand = usd(re.search(r"estimated API cost of what would run: \$([\d,.]+)", proc.stdout).group(1))
    assert grand == pytest.approx(data["total"] + sum(r["total"] for r in runs), abs=0.05)

    first, later = runs[0], runs[1:]
    texts = first["rows"][f"{BASE}: write (2 turns)"] + first["repeats"].get(
        f"{BASE}: write (2 turns)", (0, 0))[0]
    assert texts == 9000                  # 4,500 texts, two turns each
    for run in later:
        # The base student's texts and their 3 rounds by each grader: all repeats of run 1's.
        assert run["rows"][f"{BASE}: write (2 turns)"] == 0
        assert run["repeats"][f"{BASE}: write (2 turns)"][0] == 9000
        for g in GRADERS:
            assert run["repeats"][g][0] == 4500 * 3
        # The tuned student's weights differ per run: its texts are counted in every run.
        assert run["rows"][f"{TUNED}: write (2 turns)"] == 9000
        assert run["rows"][GRADERS[0]] == 4500 * 3
        assert f"{TUNED}: write (2 turns)" not in run["repeats"]
        assert run["total"] == pytest.approx(later[0]["total"])

    # Against the per-run sum (every run priced whole, as each run's plan alone prices it): each
    # later run leaves out the base student's gradings, which run 1 priced.
    base_share = first["total"] - later[0]["total"]
    left_out = sum(later[0]["repeats"][g][1] for g in GRADERS)
    assert left_out == pytest.approx(base_share, rel=0.01)
    per_run_sum = data["total"] + len(runs) * first["total"]
    assert grand == pytest.approx(per_run_sum - 3 * left_out, rel=0.005)
    assert grand < 0.8 * per_run_sum
