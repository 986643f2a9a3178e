"""Failure is never success, through the command line, with the real SDKs against the loopback
server: a refused key stops at once (exit 4), an endpoint that fails everything trips the
circuit breaker (exit 1, early), failed items exit 1 and a re-run retries only them (nothing
paid twice), a budget stop exits 3 and the study's budget holds across runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .fake_server import FakeServer

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-test-" + "a1b2c3d4" * 3


@pytest.fixture
def srv():
    s = FakeServer().start()
    yield s
    s.stop()


def write_cfg(tmp_path, srv, counts=None, timeout=2.0, teacher="openai", unreadable_ok=True,
              **extra) -> Path:
    fast = {"max_retries": 0, "timeout": timeout, "circuit_breaker": 4}
    # The fake server's grader echoes the prompt, which no parser reads: accepted here (asked
    # once), unless a test is about unreadable gradings.
    accept = {"parse_retries": 0, "max_unreadable": 1.0} if unreadable_ok else {}
    writer = ({"spec": "anthropic:claude-3-haiku-20240307", "base_url": srv.anthropic_url}
              if teacher == "anthropic" else {"spec": "openai:gpt-4o-mini", "base_url": srv.openai_url})
    tree = {"name": "loud", "output_dir": str(tmp_path / "out"), "concurrency": 2,
            "data": {"teacher": {**writer, "max_tokens": 16, "options": fast},
                     "graders": [{"spec": "openai:gpt-4o-mini", "base_url": srv.openai_url,
                                  "rounds": 1, "max_tokens": 16, "options": fast, **accept}],
                     "counts": counts or {1: 4}, "mixes": [[1]],
                     "pools": {1: {"skills": "all", "topics": "train"}}}}
    tree.update(extra)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def cli(tmp_path, *args, key=KEY, timeout=120, **run):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SKILLMIX_CACHE": str(tmp_path / "cache"),
           "OPENAI_API_KEY": key, "ANTHROPIC_API_KEY": key.replace("sk-", "sk-ant-", 1)}
    env.pop("OPENAI_BASE_URL", None)
    env.pop("SKILLMIX_HELD_LOCKS", None)     # a command run from another terminal
    env.pop("ANTHROPIC_BASE_URL", None)
    return subprocess.run([sys.executable, "-m", "skillmix_utils.cli", *args], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=timeout, **run)


def error_lines(proc) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("skillmix: error")]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_refused_key_stops_at_the_first_request(tmp_path, srv, provider):
    srv.api_key = "sk-the-right-key-0123456789"
    cfg = write_cfg(tmp_path, srv, counts={1: 12}, teacher=provider)
    proc = cli(tmp_path, "generate-data", str(cfg))
    assert proc.returncode == 4, proc.stderr
    (line,) = error_lines(proc)
    assert "API key was refused" in line and f"{provider.upper()}_API_KEY" in line
    assert KEY not in proc.stderr + proc.stdout and KEY[8:] not in proc.stderr
    assert "Traceback" not in proc.stderr
    assert srv.attempts <= 2        # the requests in flight (concurrency), not every item
    assert not (tmp_path / "out" / "data" / "data_card.json").exists()   # no empty tables


@pytest.mark.parametrize("fault,meaning", [("403", "no permission"), ("404", "unknown model"),
                                           ("400", "rejected as invalid")])
def test_other_refusals_stop_too(tmp_path, srv, fault, meaning):
    srv.fault_script = [fault] * 50
    proc = cli(tmp_path, "generate-data", str(write_cfg(tmp_path, srv, counts={1: 12})))
    assert proc.returncode == 4 and meaning in error_lines(proc)[0]
    assert srv.attempts <= 2


def test_dead_endpoint_trips_the_circuit_breaker(tmp_path, srv):
    srv.fault_rate, srv.faults = 1.0, ("cut",)
    proc = cli(tmp_path, "generate-data", str(write_cfg(tmp_path, srv, counts={1: 40})))
    assert proc.returncode == 1, proc.stderr
    (line,) = error_lines(proc)
    assert "in a row failed" in line and "re-run" in line
    assert srv.attempts < 10                   # 4 in a row (+ those in flight), not 40
    assert not (tmp_path / "out" / "data" / "data_card.json").exists()


def test_failed_items_exit_1_and_a_rerun_retries_only_them(tmp_path, srv):
    srv.fault_script = ["500", "500", "500"]   # three texts fail (no SDK retries here)
    cfg = write_cfg(tmp_path, srv, counts={1: 6})
    first = cli(tmp_path, "generate-data", str(cfg))
    assert first.returncode == 1, first.stderr
    (line,) = error_lines(first)
    assert "3 of 6 texts" in line and "re-run the same command to retry only them" in line
    second = cli(tmp_path, "generate-data", str(cfg))
    assert second.returncode == 0, second.stderr
    assert max(srv.success_counts.values()) == 1     # nothing paid twice


def test_budget_stop_has_its_own_status_and_holds_across_runs(tmp_path, srv):
    # About $0.00003 a request (gpt-4o-mini prices): the cap allows a few, not all 24.
    cfg = write_cfg(tmp_path, srv, counts={1: 12}, budget_usd=0.0002)
    first = cli(tmp_path, "generate-data", str(cfg))
    assert first.returncode == 3, first.stderr
    (line,) = error_lines(first)
    assert "study budget $0.0002 spent" in line and "$0.00 " not in line, line
    ledger = tmp_path / "out" / "budget_ledger.jsonl"
    paid = sum(json.loads(x)["usd"] for x in ledger.read_text().splitlines())
    assert 0 < paid
    before = srv.attempts
    second = cli(tmp_path, "generate-data", str(cfg))
    assert second.returncode == 3
    # The cap is the study's: the second run may finish what the first reserved, no more.
    paid2 = sum(json.loads(x)["usd"] for x in ledger.read_text().splitlines())
    assert paid2 <= 0.0002 and srv.attempts - before <= 2, (paid, paid2)


@pytest.mark.slow   # two papermill runs of notebook 02 (about 25 s each on 2 cores)
def test_run_marks_a_stage_done_only_when_it_finished_whole(tmp_path, srv):
    srv.fault_script = ["500", "500"]          # two texts fail once
    cfg = write_cfg(tmp_path, srv, counts={1: 3})
    marker = tmp_path / "out" / ".runner" / "02_data_generation.done.json"
    first = cli(tmp_path, "run", str(cfg), "--stages", "02", timeout=300)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "ItemsFailed" in error_lines(first)[0] and not marker.exists()
    second = cli(tmp_path, "run", str(cfg), "--stages", "02", timeout=300)
    assert second.returncode == 0, second.stderr
    assert marker.exists() and max(srv.success_counts.values()) == 1


def test_a_key_echoed_in_part_upper_cased_or_url_encoded_is_never_stored(tmp_path, srv):
    from urllib.parse import quote

    key = "sk-test-a1b2c3d4/e5f6+g7h8=i9j0k1l2"
    srv.fault_script = ["echo", "echo"]
    proc = cli(tmp_path, "generate-data", str(write_cfg(tmp_path, srv, counts={1: 3})), key=key)
    assert proc.returncode == 1
    stored = (tmp_path / "out" / "data" / "records.jsonl").read_text()
    assert "bad key ..." in stored                      # the echoed error was recorded ...
    for form in (key[-12:], key.upper(), quote(key, safe=""), key[8:20]):   # ... redacted
        assert form not in stored and form not in proc.stderr, form
