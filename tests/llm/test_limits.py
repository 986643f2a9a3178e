"""The rate limiter: pacing, learning the provider's limits from its headers, and a run
against a server that refuses (429) whatever exceeds its limits."""
from __future__ import annotations

import pytest

from skillmix_utils.llm.limits import HEADER_MARGIN, Bucket, RateLimits, Ticket
from skillmix_utils.llm.messages import Job, Reply

from .conftest import make


def test_bucket_spends_its_burst_then_paces():
    b = Bucket(600, burst=1.0)  # 10 per second, 10 at once
    waits = [b.reserve(1) for _ in range(12)]
    assert waits[:10] == [0.0] * 10
    assert waits[10] == pytest.approx(0.1, abs=0.01) and waits[11] == pytest.approx(0.2, abs=0.01)


def test_unlimited_bucket_never_waits():
    assert Bucket(None).reserve(10**6) == 0.0


@pytest.mark.parametrize("headers", [
    {"x-ratelimit-limit-requests": "120", "x-ratelimit-remaining-requests": "0"},
    {"anthropic-ratelimit-requests-limit": "120", "anthropic-ratelimit-requests-remaining": "0"},
])
def test_headers_set_an_unconfigured_limit_and_the_remaining_count(headers):
    lim = RateLimits()
    assert not lim.active
    ticket = Ticket({"requests": lim.requests.reserved_total}, __import__("time").monotonic())
    lim.observe(headers, ticket)
    assert lim.requests.per_minute == pytest.approx(120 * HEADER_MARGIN)
    # the provider has nothing left: the next request waits about one refill interval
    assert lim.requests.reserve(1) == pytest.approx(60 / (120 * HEADER_MARGIN), rel=0.1)


def test_headers_lower_a_configured_limit_but_never_raise_it():
    lim = RateLimits(rpm=1000, tpm=1000)
    lim.observe({"x-ratelimit-limit-requests": "100", "x-ratelimit-limit-tokens": "50000"})
    assert lim.requests.per_minute == pytest.approx(100 * HEADER_MARGIN)
    assert lim.tokens.per_minute == 1000


def test_remaining_counts_what_was_sent_after_the_answered_request():
    lim = RateLimits(rpm=6000, burst=1.0)  # capacity 100
    lim.requests.reserve(1)
    ticket = Ticket({"requests": lim.requests.reserved_total}, __import__("time").monotonic())
    for _ in range(9):  # nine more sent while the first was in flight
        lim.requests.reserve(1)
    lim.observe({"x-ratelimit-remaining-requests": "50"}, ticket)  # another process used 49
    assert lim.requests.level == pytest.approx(41, abs=1)


def test_token_estimate_learns_the_providers_count(server, keys, tmp_path):
    be = make("openai", server, tmp_path, tpm=10**6)
    job = Job(0, 0, "k", [{"role": "user", "content": "x" * 400}], None)  # estimate 104
    before, _ = be._estimate(job, 0)
    be._learn_tokens(job, Reply("t", input_tokens=208, output_tokens=1))
    after, _ = be._estimate(job, 0)
    assert before == 104 and after == 208


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_limits_learnt_from_headers_keep_a_strict_server_from_refusing(provider, server, keys,
                                                                       tmp_path):
    # 1,200 requests per minute enforced over one second (20 at once): a burst of 32
    # concurrent requests overruns it unless the limiter learnt the limit first. No rpm is
    # configured: everything the client knows comes from the headers.
    server.limits["requests"] = 1200
    server.burst = 1.0
    server.levels["requests"] = 20.0
    be = make(provider, server, tmp_path, concurrency=32, use_cache=False, max_retries=0)
    res = be.chat([[{"role": "user", "content": f"q{i}"}] for i in range(40)], max_tokens=5)
    assert [r.error for r in res if not r.ok] == []
    assert server.refused == 0
    assert be.limits.requests.per_minute == pytest.approx(1200 * HEADER_MARGIN)


def test_chat_keeps_its_client_between_calls(server, keys, tmp_path):
    be = make("openai", server, tmp_path, use_cache=False)
    be.chat([[{"role": "user", "content": "a"}]], max_tokens=5)
    client = be._kept_client
    be.chat([[{"role": "user", "content": "b"}]], max_tokens=5)
    assert client is not None and be._kept_client is client
    be.close()
    assert be._kept_client is None
    assert be.chat([[{"role": "user", "content": "c"}]], max_tokens=5)[0].ok  # starts again
