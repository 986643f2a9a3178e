"""A dry run owes what the real run then asks: through the command line, against the scripted
loopback server (tests/stages/scripted.py), after a grader setting changed."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from .scripted import study_tree

ROOT = Path(__file__).resolve().parents[2]


def skillmix(*args):
    """`skillmix ARGS` in a subprocess (keys and cache from the `api_env` fixture)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SKILLMIX_HELD_LOCKS", None)
    return subprocess.run([sys.executable, "-m", "skillmix_utils.cli", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300)


def calls_in_row(plan: str, purpose: str) -> int:
    return int(re.search(rf"{re.escape(purpose)}\s+(\d+)\s", plan).group(1))


def test_dry_runs_owe_what_the_real_run_makes_after_a_grader_setting_changed(api_env,
                                                                               scripted_server):
    tree = study_tree(scripted_server, api_env / "out")
    cfg = api_env / "study.yaml"
    cfg.write_text(yaml.safe_dump(tree))
    first = skillmix("evaluate", cfg)
    assert first.returncode == 0, first.stderr
    records = api_env / "out" / "eval" / "records.jsonl"

    tree["evaluation"]["graders"][1]["max_tokens"] = 200     # claude's gradings are now stale
    cfg.write_text(yaml.safe_dump(tree))
    dry = skillmix("grade", cfg, "--records", records, "--grader", "claude", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    owed = int(re.search(r"claude: (\d+) gradings owed on 6 records", dry.stdout).group(1))
    assert calls_in_row(dry.stdout, "eval: grade (claude)") == owed

    # `evaluate --dry-run` plans the same gradings: claude's six, and gpt's four rounds that
    # could not be read (not all three rounds of the two texts they belong to).
    plan = skillmix("evaluate", cfg, "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert calls_in_row(plan.stdout, "eval: grade (claude)") == owed
    assert calls_in_row(plan.stdout, "eval: grade (gpt)") == 4

    before = sum(scripted_server.calls.values())
    real = skillmix("grade", cfg, "--records", records, "--grader", "claude")
    assert real.returncode == 0, real.stderr
    assert sum(scripted_server.calls.values()) - before == owed == 6
