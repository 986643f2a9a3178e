"""Batch APIs: submit, poll, collect, discount, results in the same cache."""
from __future__ import annotations

import json

import pytest

from .conftest import CONVS, make


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_submit_poll_collect(provider, server, keys, tmp_path):
    server.batch_polls = 3
    be = make(provider, server, tmp_path, batch=True, poll_interval=0.01)
    res = be.chat(CONVS[:15], temperature=0.2, max_tokens=40)
    assert [r.ok for r in res] == [True] * 15
    assert all(f"Question number {i}?" in r.text for i, r in enumerate(res))
    assert server.batch_creations == 1 and len(server.success_counts) == 15
    # batch price is half the normal one
    normal = make(provider, server, tmp_path, use_cache=False).price
    r = res[0]
    assert r.cost_usd == pytest.approx(
        0.5 * (r.input_tokens * normal["input"] + r.output_tokens * normal["output"]) / 1e6)
    # results land in the ordinary cache: a non-batch backend makes no request
    attempts = server.attempts
    plain = make(provider, server, tmp_path).chat(CONVS[:15], temperature=0.2, max_tokens=40)
    assert all(x.cached for x in plain) and server.attempts == attempts
    assert [b["status"].startswith("collected") for b in be.cache.batches()] == [True]
    if provider == "openai":
        line = json.loads(next(iter(server.files.values())).splitlines()[0])
        assert line["url"] == "/v1/chat/completions" and line["body"]["temperature"] == 0.2
    else:
        params = next(iter(server.anthropic_batches.values()))["_requests"][0]["params"]
        assert params["system"] == "You are terse." and params["temperature"] == 0.2


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_batch_timeout_then_resume_in_new_backend(provider, server, keys, tmp_path):
    server.batch_polls = 4
    first = make(provider, server, tmp_path, batch=True, poll_interval=0.01, batch_timeout=0)
    res = first.chat(CONVS[:5], max_tokens=10)
    assert all(r.error.startswith("batch_pending:") for r in res)
    second = make(provider, server, tmp_path, batch=True, poll_interval=0.01)
    # asking for more than the open batch holds: the rest goes in a new batch
    res2 = second.chat(CONVS[:8], max_tokens=10)
    assert all(r.ok for r in res2) and server.batch_creations == 2
    assert set(server.success_counts.values()) == {1} and len(server.success_counts) == 8


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_refused_key_stops_a_batch_at_submission(provider, server, keys, tmp_path):
    from skillmix_utils.core.errors import RequestRefused

    server.api_key = "sk-some-other-key-000000"
    be = make(provider, server, tmp_path, batch=True, poll_interval=0.01, max_retries=0)
    with pytest.raises(RequestRefused, match="API key was refused"):
        be.chat(CONVS[:3], max_tokens=10)
    assert server.batch_creations == 0
