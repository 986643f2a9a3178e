"""What was spent is on record the moment it is paid, and a study's cap covers all its runs, grid
runs included: through the command line, with the real openai SDK against the loopback server."""
from __future__ import annotations

import json
import sqlite3

import pytest
import yaml

from .test_loud_failures import cli, error_lines, srv, write_cfg  # noqa: F401  (srv: fixture)


def ledger_usd(folder) -> float:
    path = folder / "budget_ledger.jsonl"
    return sum(json.loads(x)["usd"] for x in path.read_text().splitlines()) if path.exists() else 0.0


def cached_usd(tmp_path) -> float:
    """What the replies in the response cache were priced at (each paid exactly once)."""
    with sqlite3.connect(tmp_path / "cache" / "llm" / "responses.sqlite") as con:
        return sum(json.loads(v)["cost_usd"] for (v,) in con.execute("SELECT value FROM responses"))


def test_replies_paid_before_a_refusal_reach_the_ledger_and_the_next_cap(tmp_path, srv):
    # One chat() call of 12 requests, one at a time: three are paid, the fourth is refused (403)
    # and the call raises. The three were paid all the same.
    srv.fault_script = [None, None, None, "403"]
    cfg = write_cfg(tmp_path, srv, counts={1: 12}, concurrency=1)
    first = cli(tmp_path, "generate-data", str(cfg))
    assert first.returncode == 4, first.stderr
    assert srv.successes == 3
    paid = cached_usd(tmp_path)
    assert paid > 0 and ledger_usd(tmp_path / "out") == pytest.approx(paid, abs=1e-9)

    # A cap of exactly what was paid: the re-run reads the three replies from the cache, for
    # free, and pays for nothing more.
    attempts = srv.attempts
    second = cli(tmp_path, "generate-data", str(cfg), "--set", f"budget_usd={paid!r}")
    assert second.returncode == 3, second.stderr
    assert "study budget" in error_lines(second)[0]
    assert srv.attempts == attempts
    assert ledger_usd(tmp_path / "out") == pytest.approx(paid, abs=1e-9)


def grid_cfg(tmp_path, srv, budget_usd: float):
    """An evaluation grid (two runs) whose student and grader are paid models on `srv`."""
    model = {"spec": "openai:gpt-4o-mini", "base_url": srv.openai_url, "max_tokens": 16,
             "options": {"max_retries": 0, "timeout": 2.0}}
    tree = {"name": "gridbudget", "output_dir": str(tmp_path / "out"), "concurrency": 2,
            "budget_usd": budget_usd,
            "evaluation": {"students": [{"name": "api", "model": model}],
                           "settings": ["held_out"], "ks": [1], "n_combinations": 2,
                           "generation_rounds": 1,
                           "graders": [{**model, "name": "g", "rounds": 1}]},
            "grid": {"evaluation.n_combinations": [1, 2]}}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


@pytest.mark.slow   # one papermill run of notebook 04 (about 15 s on 2 cores)
def test_a_spent_study_budget_holds_for_every_grid_run(tmp_path, srv):
    # The study has already paid its $1 (an earlier run's ledger line at the study's top level).
    out = tmp_path / "out"
    out.mkdir()
    (out / "budget_ledger.jsonl").write_text(json.dumps({"usd": 1.0}) + "\n")
    proc = cli(tmp_path, "run", str(grid_cfg(tmp_path, srv, 1.0)), "--stages", "04", timeout=300)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "BudgetSpent" in error_lines(proc)[0]
    assert srv.attempts == 0                     # no grid run paid for anything
    for run in (out / "grid").iterdir():         # each run's ledger is the study's
        assert ledger_usd(run) == 1.0
