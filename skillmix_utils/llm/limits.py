"""Requests-per-minute and tokens-per-minute limits for one backend, learnt from the provider.

Each limit is a token bucket that refills at limit/60 per second and holds `burst` seconds of
it: a quarter of a second by default. Providers may enforce a per-minute limit over periods as
short as a second, so a client that spends a minute's allowance at once is refused; and
requests sent evenly can still arrive bunched (new connections, a busy network), so the
client's bucket is kept well inside the provider's. A request *reserves* its
share at once and sleeps until the bucket covers it, so waiters are served in order, nothing
is bound to an event loop and no task polls.

The limits come from the config (`rpm=`, `tpm=`) and from the rate-limit headers the provider
sends with every response (OpenAI's `x-ratelimit-*`, Anthropic's `anthropic-ratelimit-*`): a
limit the provider states lowers the configured one (or sets it when none was configured), and
its `remaining` count pulls the bucket down when the provider has counted more than we did
(another process on the same key, a token estimate that was too low). Concurrency itself is a
semaphore per call in `base.Backend._run_jobs`.
"""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

# Pace a little under a stated limit: the provider's clock and ours differ by the network.
HEADER_MARGIN = 0.97
DEFAULT_BURST = 0.25  # seconds of the limit that may go at once


def _int(value) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def parse_rate_headers(headers) -> dict[str, tuple[int | None, int | None]]:
    """{"requests"|"tokens": (limit per minute, remaining)} from a response's headers.

    >>> parse_rate_headers({"x-ratelimit-limit-requests": "500",
    ...                     "x-ratelimit-remaining-requests": "499",
    ...                     "x-ratelimit-limit-tokens": "30000",
    ...                     "x-ratelimit-remaining-tokens": "29000"})
    {'requests': (500, 499), 'tokens': (30000, 29000)}
    >>> parse_rate_headers({"anthropic-ratelimit-requests-limit": "50",
    ...                     "anthropic-ratelimit-requests-remaining": "0",
    ...                     "anthropic-ratelimit-input-tokens-limit": "40000",
    ...                     "anthropic-ratelimit-input-tokens-remaining": "39000"})
    {'requests': (50, 0), 'tokens': (40000, 39000)}
    >>> parse_rate_headers({"content-type": "application/json"})
    {}
    """
    get = headers.get
    out = {}
    for kind, alts in (("requests", ("requests",)),
                       ("tokens", ("tokens", "input-tokens"))):
        for name in alts:
            limit = _int(get(f"x-ratelimit-limit-{name}")
                         or get(f"anthropic-ratelimit-{name}-limit"))
            remaining = _int(get(f"x-ratelimit-remaining-{name}")
                             or get(f"anthropic-ratelimit-{name}-remaining"))
            if limit is not None or remaining is not None:
                out[kind] = (limit, remaining)
                break
    return out


@dataclass
class Ticket:
    """What a request reserved, and when: lets a later response's `remaining` be compared."""
    sent_requests: float
    sent_tokens: float
    at: float
    tokens: float = 0.0  # what this request reserved of the tokens limit


class Bucket:
    """One token bucket: `per_minute` refill, `burst` seconds of capacity, reservations."""

    def __init__(self, per_minute: float | None, burst: float = DEFAULT_BURST):
        self.burst = burst
        self.per_minute: float | None = None
        self.level = 0.0
        self.reserved_total = 0.0   # every unit ever reserved (for comparing with the provider)
        self.stamp = time.monotonic()
        self.set_limit(per_minute)

    @property
    def capacity(self) -> float:
        return max(1.0, self.per_minute / 60.0 * self.burst) if self.per_minute else 0.0

    def set_limit(self, per_minute: float | None) -> None:
        self._refill(time.monotonic())
        first = self.per_minute is None
        self.per_minute = float(per_minute) if per_minute else None
        if first and self.per_minute:
            self.level = self.capacity  # a fresh limit starts with its burst available
        self.level = min(self.level, self.capacity)

    def _refill(self, now: float) -> None:
        if self.per_minute:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.per_minute / 60)
        self.stamp = now

    def reserve(self, amount: float) -> float:
        """Take `amount` now (the level may go negative); seconds to wait before using it."""
        self.reserved_total += amount
        if not self.per_minute:
            return 0.0
        now = time.monotonic()
        self._refill(now)
        self.level -= min(amount, self.capacity)
        return max(0.0, -self.level) * 60.0 / self.per_minute

    def sync(self, remaining: int, since_total: float, since_time: float) -> None:
        """The provider said `remaining` when it counted the request reserved at
        (`since_total`, `since_time`): lower our level if the provider has less left."""
        if not self.per_minute:
            return
        now = time.monotonic()
        self._refill(now)
        theirs = min(self.capacity, remaining + (now - since_time) * self.per_minute / 60)
        theirs -= self.reserved_total - since_total  # what we sent after that request
        if theirs < self.level:
            self.level = theirs


class RateLimits:
    """Wait before a request until the rpm and tpm budgets allow it; learn from headers."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None,
                 burst: float = DEFAULT_BURST):
        self.rpm, self.tpm = rpm, tpm
        self.requests = Bucket(rpm, burst)
        self.tokens = Bucket(tpm, burst)
        self._lock = threading.Lock()  # `chat` and a user's own loop may share one backend

    async def acquire(self, tokens: int = 0) -> Ticket:
        """Block until one more request of about `tokens` tokens fits in both limits; the
        ticket says what had been reserved by then and when the request may go."""
        with self._lock:
            wait = max(self.requests.reserve(1), self.tokens.reserve(float(tokens)))
            ticket = Ticket(self.requests.reserved_total, self.tokens.reserved_total,
                            time.monotonic() + wait, float(tokens))
        if wait > 0:
            await asyncio.sleep(wait)
        return ticket

    def refused(self, ticket: Ticket | None) -> None:
        """A 429: the SDK will send the request again on its own, past this limiter; charge
        the retry now so that the requests queued behind it make room for it."""
        with self._lock:
            self.requests.reserve(1)
            if ticket is not None and ticket.tokens:
                self.tokens.reserve(ticket.tokens)

    def observe(self, headers, ticket: Ticket | None = None) -> None:
        """Learn from one response's rate-limit headers (any response, 429s included)."""
        info = parse_rate_headers(headers)
        if not info:
            return
        with self._lock:
            for kind, bucket, configured in (("requests", self.requests, self.rpm),
                                             ("tokens", self.tokens, self.tpm)):
                limit, remaining = info.get(kind, (None, None))
                learnt = False
                if limit:
                    stated = limit * HEADER_MARGIN
                    if configured is None or stated < configured:
                        if bucket.per_minute is None or abs(bucket.per_minute - stated) > 1e-9:
                            bucket.set_limit(stated)
                            learnt = True
                if remaining is not None and ticket is not None:
                    since = ticket.sent_requests if kind == "requests" else ticket.sent_tokens
                    # A limit just learnt (the first response, whose time on the wire includes
                    # opening the connection): take `remaining` as it stands, without crediting
                    # the refill since the request left.
                    bucket.sync(remaining, since, time.monotonic() if learnt else ticket.at)

    @property
    def active(self) -> bool:
        return bool(self.requests.per_minute or self.tokens.per_minute)
