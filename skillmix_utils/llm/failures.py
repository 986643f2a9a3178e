"""Which failed calls stop a stage, and the circuit breaker that stops an endpoint failing
everything.

The SDKs already retry what a retry can fix (429, 5xx, timeouts, dropped connections). What is
left falls in two kinds:

- **refused** (HTTP 400, 401, 403, 404, 422: a wrong or revoked key, no permission, an unknown
  model, a request the API rejects): every later request would be refused the same way, so the
  first one stops the stage (`RequestRefused`, exit status 4) instead of being tried on every item;
- **failed** (anything else once the SDK gave up): recorded on the item, which a re-run retries.
  When `threshold` calls in a row fail and none succeeds in between, the endpoint is taken to be
  down: no further request is sent and the stage stops (`ItemsFailed`, exit status 1).

Either way the breaker *opens*: for `cooldown` seconds no request is sent and every call raises
the stopping error. Then it is *half-open*: requests go out again (a notebook that keeps the
backend, a key fixed on the provider's side, an endpoint back up); the first success closes it,
and the first failure opens it again for another cool-down (so at most the requests already in
flight are sent in vain). Without the cool-down, a breaker once tripped stopped the backend for
good, whatever happened to the endpoint.
"""
from __future__ import annotations

import time

from skillmix_utils.core.errors import ItemsFailed, RequestRefused

REFUSED = {400: "the request was rejected as invalid", 401: "the API key was refused",
           403: "the API key has no permission for this", 404: "unknown model or endpoint",
           422: "the request was rejected as invalid"}
DEFAULT_THRESHOLD = 10
DEFAULT_COOLDOWN = 30.0  # seconds an open breaker sends nothing before it tries again


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an SDK error carries, or None (a timeout, a dropped connection)."""
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def refusal(exc: BaseException) -> str | None:
    """What a refused request means (None for a failure a later retry may fix).

    >>> class E(Exception): status_code = 401
    >>> refusal(E()), refusal(TimeoutError())
    ('the API key was refused', None)
    """
    return REFUSED.get(status_of(exc))


class CircuitBreaker:
    """Counts the calls of one backend; opens on the first refusal or after `threshold`
    consecutive failures (0 disables the latter), half-opens `cooldown` seconds later and
    closes on the next success. `check()` raises while it is open or not yet closed again."""

    def __init__(self, spec: str, threshold: int = DEFAULT_THRESHOLD,
                 cooldown: float = DEFAULT_COOLDOWN):
        self.spec, self.threshold, self.cooldown = spec, int(threshold or 0), cooldown
        self.in_a_row = 0
        self.error: Exception | None = None   # set from opening until a success closes it
        self.opened_at = 0.0

    @property
    def open(self) -> bool:
        """True while no request may be sent (tripped, and the cool-down not over)."""
        return self.error is not None and time.monotonic() - self.opened_at < self.cooldown

    def success(self) -> None:
        """Count one call that succeeded; it closes a half-open breaker."""
        self.in_a_row = 0
        if self.error is not None and not self.open:
            self.error = None

    def _trip(self, error: Exception) -> None:
        self.error, self.opened_at = error, time.monotonic()

    def failure(self, exc: BaseException, detail: str) -> None:
        """Count one call that failed after the SDK's retries (`detail`: its redacted text)."""
        if self.open:
            return
        meaning = refusal(exc)
        if meaning:
            key = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}.get(
                self.spec.split(":")[0])
            hint = f"; check {key}" if key and "key" in meaning else ""
            self._trip(RequestRefused(f"{meaning} ({detail[:300]}){hint}; stopped at the first "
                                      "refusal, nothing else was sent", field=self.spec))
            return
        self.in_a_row += 1
        if self.threshold and self.in_a_row >= self.threshold:
            # half-open, `in_a_row` is still past the threshold: one more failure re-opens it
            self._trip(ItemsFailed(
                f"{self.in_a_row} calls in a row failed after the SDK's retries (last: "
                f"{detail[:300]}); the endpoint looks down, so the stage stopped early. What "
                "finished is saved; re-run to retry the rest", field=self.spec))

    def check(self) -> None:
        """Raise the stopping error while the breaker is tripped and no success closed it."""
        if self.error is not None:
            raise self.error
