"""A run killed part-way (a real SIGKILL of a child process) resumes with nothing lost or doubled."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skillmix_utils.llm import get_backend

from .child_run import conversations

CHILD = Path(__file__).with_name("child_run.py")
ROOT = Path(__file__).resolve().parents[2]


def start_child(args, keys) -> subprocess.Popen:
    env = {**os.environ, "OPENAI_API_KEY": keys["openai"], "ANTHROPIC_API_KEY": keys["anthropic"],
           "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(CHILD), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(cond, proc, timeout=60.0):
    end = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"child ended early: {proc.stderr.read().decode()[-2000:]}")
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_killed_run_resumes_without_loss_or_duplicates(provider, server, keys, tmp_path):
    spec = "openai:gpt-4o-mini" if provider == "openai" else "anthropic:claude-3-haiku-20240307"
    url = server.openai_url if provider == "openai" else server.anthropic_url
    server.latency = 0.1
    n = 50
    child = start_child([spec, url, tmp_path / "cache", n], keys)
    wait_for(lambda: server.successes >= 15, child)
    # Freeze the server's replies (requests stay in flight), give the child time to store the
    # replies it already received, then kill it mid-run.
    server.hold.clear()
    time.sleep(0.3)
    child.kill()
    child.wait()
    assert child.returncode == -9
    server.hold.set()
    done_before = server.successes
    assert 15 <= done_before < n
    be = get_backend(spec, base_url=url, cache_dir=tmp_path / "cache", progress=False)
    res = be.chat(conversations(n), temperature=0.7, max_tokens=50)
    assert [r.ok for r in res] == [True] * n
    assert sum(r.cached for r in res) == done_before  # nothing received was lost
    assert len(server.success_counts) == n
    assert set(server.success_counts.values()) == {1}  # nothing was paid twice
    assert len(be.cache) == n


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_batch_resumes_polling_after_kill(provider, server, keys, tmp_path):
    spec = "openai:gpt-4o-mini" if provider == "openai" else "anthropic:claude-3-haiku-20240307"
    url = server.openai_url if provider == "openai" else server.anthropic_url
    server.batch_polls = 10**9  # the batch never ends while the first process lives
    batches = server.openai_batches if provider == "openai" else server.anthropic_batches
    child = start_child([spec, url, tmp_path / "cache", 20, "batch"], keys)
    wait_for(lambda: any(b["_polls"] >= 2 for b in list(batches.values())), child)
    child.kill()
    child.wait()
    assert server.batch_creations == 1 and server.successes == 0
    server.batch_polls = 0  # the provider finishes the batch
    be = get_backend(spec, base_url=url, cache_dir=tmp_path / "cache", batch=True,
                     poll_interval=0.02, progress=False)
    assert [b["status"] for b in be.cache.batches()] == ["submitted"]
    res = be.chat(conversations(20), temperature=0.7, max_tokens=50)
    assert [r.ok for r in res] == [True] * 20
    assert server.batch_creations == 1  # resumed polling, did not resubmit
    assert set(server.success_counts.values()) == {1} and len(server.success_counts) == 20
    assert all("Write about item" in r.text for r in res)
    # a third run is served from the cache, with no request at all
    paths = sum(server.paths.values())
    again = be.chat(conversations(20), temperature=0.7, max_tokens=50)
    assert all(r.cached for r in again) and sum(server.paths.values()) == paths
