"""A killed and resumed evaluation gives the same tables as an uninterrupted one.

`skillmix evaluate` runs in a real subprocess against the scripted loopback server (slowed down
so the run takes a few seconds) and is killed with SIGKILL once some gradings are on disk but
before the tables exist; a second run resumes. The uninterrupted reference runs afterwards
with an empty cache, so it shares nothing with the killed run but the script.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import yaml

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.records import RecordStore
from skillmix_utils.stages.evaluate import run_evaluation

from .scripted import make_respond, study_tree
from .scripted_server import ScriptedServer

TABLES = ("metrics.csv", "per_category.csv", "agreement.csv", "parse_failures.csv")


def _lines(path):
    return sum(1 for _ in open(path)) if path.exists() else 0


def test_killed_and_resumed_evaluation_matches_uninterrupted(api_env, monkeypatch, tmp_path):
    server = ScriptedServer(make_respond(), latency=0.05).start()
    try:
        out = tmp_path / "killed"
        tree = study_tree(server, out, concurrency=1)   # chunks of 16: saved as they finish
        config = tmp_path / "study.yaml"
        config.write_text(yaml.safe_dump(tree))
        records = out / "eval" / "records.jsonl"
        cmd = [sys.executable, "-m", "skillmix_utils.cli", "evaluate", str(config)]
        proc = subprocess.Popen(cmd, env=dict(os.environ), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        # 6 lines = the texts; more = a grading chunk saved. Kill before the run ends.
        while _lines(records) <= 6 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, proc.communicate()[0].decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (out / "eval" / "tables" / "metrics.csv").exists()
        partial = RecordStore(records).records()
        assert len(partial) == 6
        assert sum(len(r.gradings) for r in partial) < 24       # grading was cut short
        calls_before = sum(server.calls.values())

        done = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "metrics:" in done.stdout
        # The texts were not written again: only the missing gradings were asked for.
        assert sum(server.calls.values()) - calls_before < 24

        monkeypatch.setenv("SKILLMIX_CACHE", str(tmp_path / "cache-reference"))
        ref = StudyConfig.model_validate(study_tree(server, tmp_path / "reference"))
        run_evaluation(ref)
        for name in TABLES:
            got = (out / "eval" / "tables" / name).read_text()
            want = (tmp_path / "reference" / "eval" / "tables" / name).read_text()
            assert got == want, name
    finally:
        server.stop()
