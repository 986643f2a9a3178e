"""Faults a provider or a network can throw at a stage, through the command line with the real
SDKs against the loopback server (issue 22): an empty or null reply is recorded once, not
retried as broken; unreadable gradings are asked again a bounded number of times, then the stage
exits 1 saying so, and a re-run pays nothing again; a Retry-After of an hour is not slept
through; a server that never answers shows in the progress line and times out; the request
timeout is shown in a dry run."""
from __future__ import annotations

import time

import pytest

from skillmix_utils.core.records import RecordStore

from .test_loud_failures import cli, error_lines, srv, write_cfg  # noqa: F401


@pytest.mark.parametrize("teacher", ["openai", "anthropic"])
@pytest.mark.parametrize("fault", ["null", "no-choices"])
def test_empty_replies_are_recorded_once_and_unreadable_gradings_exit_1(tmp_path, srv, fault,
                                                                        teacher):
    srv.fault_rate, srv.faults = 1.0, (fault,)       # every reply is empty
    cfg = write_cfg(tmp_path, srv, counts={1: 2}, teacher=teacher, unreadable_ok=False)
    first = cli(tmp_path, "generate-data", str(cfg))
    assert first.returncode == 1, first.stderr
    assert "Traceback" not in first.stderr
    (line,) = error_lines(first)
    assert "2 of 2 gradings by openai:gpt-4o-mini could not be read after 3 attempts" in line
    assert "first reply: ''" in line
    # 2 texts x 2 turns, each asked once; 2 gradings x (1 + parse_retries 2), each asked once
    assert srv.attempts == 4 + 6
    recs = RecordStore(tmp_path / "out" / "data" / "records.jsonl").records()
    assert [r.status for r in recs] == ["ok", "ok"] and all(r.answer == "" for r in recs)
    assert all(g.status == "parse_failed" and g.parse["attempts"] == 3
               for r in recs for g in r.gradings)
    again = cli(tmp_path, "generate-data", str(cfg))
    assert again.returncode == 1 and error_lines(again) == [line]
    assert srv.attempts == 10                     # the re-run is answered by the cache


@pytest.mark.parametrize("teacher", ["openai", "anthropic"])
def test_an_hour_of_retry_after_is_left_for_the_next_run(tmp_path, srv, teacher):
    srv.fault_script = ["429-long"]               # the first request; the rest succeed
    cfg = write_cfg(tmp_path, srv, counts={1: 2}, teacher=teacher)
    cfg.write_text(cfg.read_text().replace("max_retries: 0", "max_retries: 2"))   # SDK retries on
    start = time.monotonic()
    first = cli(tmp_path, "generate-data", str(cfg), timeout=60)
    assert time.monotonic() - start < 50          # the SDK would have slept the hour
    assert first.returncode == 1, first.stderr
    (line,) = error_lines(first)
    assert "1 of 2 texts" in line and "wait 3600 s (Retry-After)" in line
    assert "options.max_retry_after (120 s)" in line and "re-run" in line
    again = cli(tmp_path, "generate-data", str(cfg), timeout=60)
    assert again.returncode == 0, again.stderr    # rescheduled: the re-run makes it
    assert max(srv.success_counts.values()) == 1


def test_a_stalled_server_shows_in_the_progress_line_and_times_out(tmp_path, srv, monkeypatch):
    monkeypatch.setenv("SKILLMIX_PROGRESS_EVERY", "1")
    srv.hold.clear()                              # no reply ever comes
    cfg = write_cfg(tmp_path, srv, counts={1: 1}, timeout=4)
    proc = cli(tmp_path, "generate-data", str(cfg), timeout=60)
    srv.hold.set()
    assert proc.returncode == 1, proc.stderr
    waiting = [ln for ln in proc.stderr.splitlines() if "for a reply" in ln]
    assert waiting and "ETA ?" in waiting[0] and "waiting 0:0" in waiting[0], proc.stderr
    (line,) = error_lines(proc)
    assert "1 of 1 text " in line and "timed out" in line.lower()


def test_dry_run_shows_the_request_timeout(tmp_path, srv):
    cfg = write_cfg(tmp_path, srv, counts={1: 1}, unreadable_ok=False)
    cfg.write_text(cfg.read_text().replace("timeout: 2.0", "max_retry_after: 30"))
    proc = cli(tmp_path, "generate-data", str(cfg), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert ("openai:gpt-4o-mini: request timeout 120 s per attempt (options.timeout), "
            "Retry-After waited up to 30 s (options.max_retry_after), an unreadable grading "
            "asked again up to 2 times (parse_retries)") in proc.stdout
