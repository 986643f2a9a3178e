"""Requests-per-minute and tokens-per-minute limits for one backend, learnt from the provider.

Each limit is a token bucket that refills at limit/60 per second and holds `burst` seconds of
it: a quarter of a second by default. Providers may enforce a per-minute limit over periods as
short as a second, so a client that spends a minute's allowance at once is refused; and
requests sent evenly can still arrive bunched (new connections, a busy network), so the
client's bucket is kept well inside the provider's. A request *reserves* its whole
share at once, even when that is more than the burst (the level goes into debt), and sleeps
until the bucket has earned it: no request goes for less than it costs, so the long-run rate is
the limit whatever the request size. Waiters are served in order, nothing is bound to an event
loop and no task polls.

What a request costs is what the provider counts. OpenAI counts the prompt and `max_tokens`
against one tokens-per-minute limit when the request arrives. Anthropic counts input tokens
(ITPM) and output tokens (OTPM) apart, the output estimated from `max_tokens` on arrival and
corrected to the tokens written when the request ends (`settle`). The configured `tpm=` caps
prompt plus `max_tokens` for either provider (never more than the provider allows); the
provider's headers add its own limits, Anthropic's as an input and an output bucket.

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
from dataclasses import dataclass, field

# Pace a little under a stated limit: the provider's clock and ours differ by the network.
HEADER_MARGIN = 0.97
DEFAULT_BURST = 0.25  # seconds of the limit that may go at once


def _int(value) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def retry_after_seconds(headers) -> float | None:
    """The wait a response asks for: `retry-after-ms`, else `retry-after` in seconds or as an
    HTTP date; None when it asks for none.

    >>> retry_after_seconds({"retry-after": "3600"}), retry_after_seconds({"retry-after-ms": "50"})
    (3600.0, 0.05)
    """
    import email.utils
    import time

    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            when = email.utils.parsedate_tz(value)
            if when is not None:
                return max(0.0, email.utils.mktime_tz(when) - time.time())
    return None


def parse_rate_headers(headers) -> dict[str, tuple[int | None, int | None]]:
    """{kind: (limit per minute, remaining)} from a response's headers; kinds are "requests",
    "tokens" (prompt plus max_tokens: OpenAI's one limit), "input" and "output" (Anthropic's).

    Anthropic's `anthropic-ratelimit-tokens-*` is whichever of its two limits is nearer, so it
    is read only from a server that sends neither `input-tokens-*` nor `output-tokens-*`
    (as the combined limit: charging prompt plus max_tokens against it never overruns either).

    >>> parse_rate_headers({"x-ratelimit-limit-requests": "500",
    ...                     "x-ratelimit-remaining-requests": "499",
    ...                     "x-ratelimit-limit-tokens": "30000",
    ...                     "x-ratelimit-remaining-tokens": "29000"})
    {'requests': (500, 499), 'tokens': (30000, 29000)}
    >>> parse_rate_headers({"anthropic-ratelimit-requests-limit": "50",
    ...                     "anthropic-ratelimit-requests-remaining": "0",
    ...                     "anthropic-ratelimit-input-tokens-limit": "40000",
    ...                     "anthropic-ratelimit-input-tokens-remaining": "39000",
    ...                     "anthropic-ratelimit-output-tokens-limit": "8000",
    ...                     "anthropic-ratelimit-output-tokens-remaining": "7000",
    ...                     "anthropic-ratelimit-tokens-limit": "8000"})
    {'requests': (50, 0), 'input': (40000, 39000), 'output': (8000, 7000)}
    >>> parse_rate_headers({"content-type": "application/json"})
    {}
    """
    get = headers.get
    out = {}
    for kind, name in (("requests", "requests"), ("input", "input-tokens"),
                       ("output", "output-tokens"), ("tokens", "tokens")):
        limit = _int(get(f"x-ratelimit-limit-{name}") or get(f"anthropic-ratelimit-{name}-limit"))
        remaining = _int(get(f"x-ratelimit-remaining-{name}")
                         or get(f"anthropic-ratelimit-{name}-remaining"))
        if limit is not None or remaining is not None:
            out[kind] = (limit, remaining)
    if "input" in out or "output" in out:
        out.pop("tokens", None)
    return out


@dataclass
class Ticket:
    """What a request reserved, and when: lets a later response's `remaining` be compared."""
    sent: dict[str, float]      # each bucket's `reserved_total` once this request was counted
    at: float
    charged: dict[str, float] = field(default_factory=dict)  # what this request reserved


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
        # The whole amount, even past the burst: the level goes into debt and the request
        # waits until the bucket has earned it (charging a large request only the burst let
        # requests of 8 bursts through at 8 times the limit).
        self.level -= amount
        return max(0.0, -self.level) * 60.0 / self.per_minute

    def give_back(self, amount: float) -> None:
        """Return part of a reservation the provider did not count in the end."""
        # `reserved_total` keeps it: a later `sync` then counts it as sent, which can only
        # lower the level (the provider corrects its count when the request ends, not before).
        if amount > 0 and self.per_minute:
            self._refill(time.monotonic())
            self.level = min(self.capacity, self.level + amount)

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
    """Wait before a request until its provider's limits allow it; learn them from headers.

    Buckets: `requests` (rpm), `tokens` (prompt plus max_tokens: the configured tpm and
    OpenAI's limit), `input` and `output` (Anthropic's ITPM and OTPM, from its headers)."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None,
                 burst: float = DEFAULT_BURST):
        self.rpm, self.tpm = rpm, tpm
        self.requests = Bucket(rpm, burst)
        self.tokens = Bucket(tpm, burst)
        self.input = Bucket(None, burst)
        self.output = Bucket(None, burst)
        self._lock = threading.Lock()  # `chat` and a user's own loop may share one backend

    def _buckets(self):
        return {"requests": self.requests, "tokens": self.tokens, "input": self.input,
                "output": self.output}

    async def acquire(self, tokens: int = 0, output: int = 0) -> Ticket:
        """Block until one more request fits in every limit: `tokens` is its prompt plus
        `output` (its max_tokens). The ticket says what had been reserved by then, what this
        request reserved and when it may go."""
        charge = {"requests": 1.0, "tokens": float(tokens),
                  "input": float(max(0, tokens - output)), "output": float(output)}
        with self._lock:
            buckets = self._buckets()
            wait = max(buckets[k].reserve(v) for k, v in charge.items())
            ticket = Ticket({k: b.reserved_total for k, b in buckets.items()},
                            time.monotonic() + wait, charge)
        if wait > 0:
            await asyncio.sleep(wait)
        return ticket

    def settle(self, ticket: Ticket | None, output_tokens: int) -> None:
        """The request ended having written `output_tokens`: Anthropic corrects its output
        count from max_tokens to that, so the output bucket gets the difference back."""
        if ticket is None:
            return
        with self._lock:
            self.output.give_back(ticket.charged.get("output", 0.0) - output_tokens)

    def refused(self, ticket: Ticket | None) -> None:
        """A 429: the SDK will send the request again on its own, past this limiter; charge
        the retry now so that the requests queued behind it make room for it."""
        with self._lock:
            if ticket is None:
                self.requests.reserve(1)
                return
            for kind, bucket in self._buckets().items():
                bucket.reserve(ticket.charged.get(kind, 1.0 if kind == "requests" else 0.0))

    def observe(self, headers, ticket: Ticket | None = None) -> None:
        """Learn from one response's rate-limit headers (any response, 429s included)."""
        info = parse_rate_headers(headers)
        if not info:
            return
        configured = {"requests": self.rpm, "tokens": self.tpm}
        with self._lock:
            buckets = self._buckets()
            for kind, (limit, remaining) in info.items():
                bucket = buckets[kind]
                learnt = False
                if limit:
                    stated = limit * HEADER_MARGIN
                    mine = configured.get(kind)
                    if mine is None or stated < mine:
                        if bucket.per_minute is None or abs(bucket.per_minute - stated) > 1e-9:
                            bucket.set_limit(stated)
                            learnt = True
                if remaining is not None and ticket is not None:
                    # A limit just learnt (the first response, whose time on the wire includes
                    # opening the connection): take `remaining` as it stands, without crediting
                    # the refill since the request left.
                    bucket.sync(remaining, ticket.sent.get(kind, 0.0),
                                time.monotonic() if learnt else ticket.at)

    @property
    def active(self) -> bool:
        return any(b.per_minute for b in self._buckets().values())
