"""Issue 18, through the real SDKs against the loopback server: a tokens-per-minute limit holds
for requests larger than the limiter's burst; overlapping `achat` calls on one backend each work
and a tripped circuit breaker lets requests through again after its cool-down; a batch the
provider no longer knows is submitted again instead of staying "submitted" for ever."""
from __future__ import annotations

import asyncio
import logging
import time

import pytest

from skillmix_utils.core.errors import ItemsFailed
from skillmix_utils.llm.limits import HEADER_MARGIN, Bucket, RateLimits

from .conftest import CONVS, make


def test_a_request_larger_than_the_burst_pays_in_full():
    b = Bucket(30_000)                        # 500 tokens a second, a burst of 125
    waits = [b.reserve(1000) for _ in range(6)]
    # the k-th request of 1,000 tokens leaves once k * 1000 tokens have been earned
    for k, wait in enumerate(waits, 1):
        assert wait == pytest.approx((k * 1000 - 125) / 500, abs=0.05)


def test_tpm_holds_against_a_server_without_rate_limit_headers(server, keys, tmp_path):
    # tpm 120,000 (2,000 tokens a second, a burst of 500); each request is 1,000 tokens on the
    # server's count: 4 words of prompt and max_tokens 996. The server sends no rate-limit
    # headers, so the configured limit is all the client knows.
    tpm, size = 120_000, 1000
    arrivals = []
    answer = server.openai_completion

    def timed(body):
        arrivals.append(time.monotonic())
        return answer(body)

    server.openai_completion = timed
    be = make("openai", server, tmp_path, tpm=tpm, concurrency=8, use_cache=False)
    res = be.chat([[{"role": "user", "content": f"q{i}"}] for i in range(6)], max_tokens=size - 4)
    assert [r.error for r in res if not r.ok] == []
    assert len(arrivals) == 6 and all(b["max_tokens"] == size - 4 for b in server.bodies)
    # in every window between two arrivals the server got no more than the limit allows for
    # that window, plus the request that opened it (and 0.1 s of scheduling slack)
    for i in range(len(arrivals)):
        for j in range(i + 1, len(arrivals)):
            sent = (j - i + 1) * size
            allowed = tpm / 60 * (arrivals[j] - arrivals[i] + 0.1) + size
            assert sent <= allowed, (i, j, arrivals)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_overlapping_achat_calls_each_succeed(provider, server, keys, tmp_path):
    server.latency = 0.05
    be = make(provider, server, tmp_path, max_retries=0, concurrency=4)

    async def two_cells():
        # the call that starts second ends first, while the first still has requests to make
        return await asyncio.gather(be.achat(CONVS[:24], max_tokens=5),
                                    be.achat(CONVS[24:28], max_tokens=5))

    first, second = asyncio.run(two_cells())
    assert [r.error for r in first + second if not r.ok] == []
    assert [r.text for r in first + second] == [r.text for r in be.chat(CONVS[:28], max_tokens=5)]
    assert not be.breaker.open and be.breaker.error is None


def test_a_tripped_breaker_lets_requests_through_after_its_cool_down(server, keys, tmp_path):
    server.fault_rate, server.faults = 1.0, ("cut",)
    be = make("openai", server, tmp_path, max_retries=0, concurrency=1, circuit_breaker=3)
    with pytest.raises(ItemsFailed, match="in a row failed"):
        be.chat(CONVS[:6], max_tokens=5)
    assert server.attempts == 3
    with pytest.raises(ItemsFailed):          # still cooling down: nothing is sent
        be.chat(CONVS[:6], max_tokens=5)
    assert server.attempts == 3
    server.fault_rate = 0.0                   # the endpoint is back
    be.breaker.cooldown = 0.2
    time.sleep(0.3)
    res = be.chat(CONVS[:6], max_tokens=5)
    assert [r.error for r in res if not r.ok] == [] and be.breaker.error is None


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_batch_the_provider_no_longer_knows_is_submitted_again(provider, server, keys,
                                                                 tmp_path, caplog):
    server.batch_polls = 3
    first = make(provider, server, tmp_path, batch=True, poll_interval=0.01, batch_timeout=0)
    assert all(r.error.startswith("batch_pending:") for r in first.chat(CONVS[:4], max_tokens=10))
    ((bid, _),) = [(b["batch_id"], b) for b in first.cache.batches()]
    # the provider forgets the batch (deleted, expired past retention, another organisation)
    (server.openai_batches if provider == "openai" else server.anthropic_batches).pop(bid)
    second = make(provider, server, tmp_path, batch=True, poll_interval=0.01)
    with caplog.at_level(logging.WARNING, logger="skillmix.llm"):
        res = second.chat(CONVS[:4], max_tokens=10)
    assert [r.error for r in res if not r.ok] == []
    assert all(f"Question number {i}?" in r.text for i, r in enumerate(res))
    assert server.batch_creations == 2
    statuses = {b["batch_id"]: b["status"] for b in second.cache.batches()}
    assert statuses[bid].startswith("lost") and len(statuses) == 2
    assert any(bid in m and "submitted again" in m for m in caplog.messages), caplog.messages


def test_anthropic_input_and_output_limits_are_charged_apart():
    # Anthropic states ITPM and OTPM apart (and `tokens-*`, the nearer of the two): the prompt
    # is charged to the input limit and max_tokens to the output limit, which is corrected to
    # the tokens written when the request ends.
    lim = RateLimits()
    lim.observe({"anthropic-ratelimit-input-tokens-limit": "4000000",
                 "anthropic-ratelimit-output-tokens-limit": "60000",
                 "anthropic-ratelimit-tokens-limit": "60000"})
    assert lim.input.per_minute == pytest.approx(4e6 * HEADER_MARGIN)
    assert lim.output.per_minute == pytest.approx(6e4 * HEADER_MARGIN)
    assert lim.tokens.per_minute is None     # the mixed `tokens-*` limit is not charged as one

    async def two_requests():
        t = time.monotonic()
        tickets = [await lim.acquire(400 + 100, output=400) for _ in range(2)]
        return time.monotonic() - t, tickets

    took, tickets = asyncio.run(two_requests())
    # 800 output tokens against a burst of 242 at 970 a second: about 0.57 s
    assert took == pytest.approx((800 - 60000 * HEADER_MARGIN / 240) / 970, abs=0.1)
    assert lim.input.capacity - lim.input.level < 250    # 2 x 100 prompt tokens
    wait = lim.output.reserve(400)                    # a third request, queued
    lim.settle(tickets[0], output_tokens=50)          # the first wrote 50 of its 400
    assert lim.output.reserve(0) == pytest.approx(wait - 350 / 970, abs=0.02)
