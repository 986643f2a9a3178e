"""One run per output folder, with two real `skillmix` processes: the second refuses at once
naming the holder (pid, command, since when), so no request is bought twice; a lock left by a
killed run is taken over."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from .test_loud_failures import KEY, ROOT, cli, error_lines, srv, write_cfg  # noqa: F401


def start(tmp_path, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SKILLMIX_CACHE": str(tmp_path / "cache"),
           "OPENAI_API_KEY": KEY}
    env.pop("OPENAI_BASE_URL", None)
    env.pop("SKILLMIX_HELD_LOCKS", None)     # a command run from another terminal
    return subprocess.Popen([sys.executable, "-m", "skillmix_utils.cli", *args], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_request(srv, timeout=60):
    end = time.time() + timeout
    while srv.paths[("POST", "/chat/completions")] == 0:
        assert time.time() < end, "the first run never sent a request"
        time.sleep(0.05)


def test_second_run_on_a_folder_in_use_refuses_at_once(tmp_path, srv):
    cfg = write_cfg(tmp_path, srv, counts={1: 4}, timeout=60)
    srv.hold.clear()                       # the first run stalls inside its first requests
    first = start(tmp_path, "generate-data", str(cfg))
    try:
        wait_for_request(srv)
        t0 = time.time()
        second = cli(tmp_path, "generate-data", str(cfg))
        assert second.returncode == 5, second.stderr
        (line,) = error_lines(second)
        assert f"in use by pid {first.pid} (" in line and "generate-data" in line and " since 20" in line
        assert time.time() - t0 < 30        # refused at once, not after waiting
        run = cli(tmp_path, "run", str(cfg), "--stages", "02")
        assert run.returncode == 5 and f"pid {first.pid}" in error_lines(run)[0]
        requests = srv.paths[("POST", "/chat/completions")]
    finally:
        srv.hold.set()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert max(srv.success_counts.values()) == 1 and requests <= 2   # nothing bought twice


def test_lock_of_a_killed_run_is_taken_over(tmp_path, srv):
    cfg = write_cfg(tmp_path, srv, counts={1: 4}, timeout=60)
    srv.hold.clear()
    first = start(tmp_path, "generate-data", str(cfg))
    wait_for_request(srv)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    srv.hold.set()
    again = cli(tmp_path, "generate-data", str(cfg))
    assert again.returncode == 0, again.stderr
    assert f"taking over the lock of a killed run (pid {first.pid}" in again.stderr
    assert not (tmp_path / "out" / ".skillmix.lock.json").exists()   # released at the end


def test_interrupted_run_exits_130_and_releases_the_folder(tmp_path, srv):
    cfg = write_cfg(tmp_path, srv, counts={1: 4}, timeout=60)
    srv.hold.clear()
    first = start(tmp_path, "generate-data", str(cfg))
    wait_for_request(srv)
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=60)
    srv.hold.set()
    assert first.returncode == 130, err
    assert "interrupted; what finished is saved, re-run to resume" in err and "Traceback" not in err
    assert not (tmp_path / "out" / ".skillmix.lock.json").exists()
    assert cli(tmp_path, "generate-data", str(cfg)).returncode == 0


def test_a_stage_run_from_a_notebook_holds_the_folder_too(tmp_path, srv, monkeypatch):
    # What a notebook in JupyterLab does (no `skillmix run` around it): the stage's StageRun
    # takes the lock, so a command-line run on the same folder meanwhile refuses.
    import yaml

    from skillmix_utils.core.config import StudyConfig
    from skillmix_utils.stages.context import StageRun

    monkeypatch.delenv("SKILLMIX_HELD_LOCKS", raising=False)
    cfg = write_cfg(tmp_path, srv)
    run = StageRun(StudyConfig.model_validate(yaml.safe_load(cfg.read_text())))
    try:
        proc = cli(tmp_path, "generate-data", str(cfg))
        assert proc.returncode == 5 and f"in use by pid {os.getpid()}" in error_lines(proc)[0]
    finally:
        run.close()
    assert srv.attempts == 0
