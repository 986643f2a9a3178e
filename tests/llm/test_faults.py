"""Injected faults: every item completes, no success is paid twice, a re-run makes no request."""
from __future__ import annotations

import pytest

from .conftest import CONVS, make
from .fake_server import FAULTS


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_twenty_percent_faults(provider, server, keys, tmp_path):
    server.fault_rate = 0.2
    server.timeout_sleep = 0.6
    server.fault_script = list(FAULTS)  # each kind at least once, then 20% at random
    be = make(provider, server, tmp_path, timeout=0.4, max_retries=8, concurrency=16)
    res = be.chat(CONVS, temperature=0.7, max_tokens=30)
    assert [r.ok for r in res] == [True] * len(CONVS), [r.error for r in res if not r.ok]
    assert all(f"Question number {i}?" in r.text for i, r in enumerate(res))
    assert set(server.fault_counts) == set(FAULTS)
    assert sum(server.fault_counts.values()) >= 0.1 * server.attempts
    # the server counted one successful completion per distinct request, never two
    assert len(server.success_counts) == len(CONVS)
    assert max(server.success_counts.values()) == 1
    attempts = server.attempts
    again = make(provider, server, tmp_path).chat(CONVS, temperature=0.7, max_tokens=30)
    assert server.attempts == attempts  # zero requests on the second run
    assert all(r.cached and r.ok for r in again)
    assert [r.texts for r in again] == [r.texts for r in res]


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_alone_is_retried(fault, server, keys, tmp_path):
    server.fault_script = [fault, fault]
    server.timeout_sleep = 0.5
    be = make("openai", server, tmp_path, timeout=0.3, max_retries=3, concurrency=1)
    res = be.chat(CONVS[:2], max_tokens=5)
    assert all(r.ok for r in res)
    assert server.attempts == 4 and server.fault_counts[fault] == 2
    assert max(server.success_counts.values()) == 1
