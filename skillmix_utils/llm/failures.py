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
"""
from __future__ import annotations

from skillmix_utils.core.errors import ItemsFailed, RequestRefused

REFUSED = {400: "the request was rejected as invalid", 401: "the API key was refused",
           403: "the API key has no permission for this", 404: "unknown model or endpoint",
           422: "the request was rejected as invalid"}
DEFAULT_THRESHOLD = 10


def refusal(exc: BaseException) -> str | None:
    """What a refused request means (None for a failure a later retry may fix).

    >>> class E(Exception): status_code = 401
    >>> refusal(E()), refusal(TimeoutError())
    ('the API key was refused', None)
    """
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return REFUSED.get(status) if isinstance(status, int) else None


class CircuitBreaker:
    """Counts the calls of one backend; opens on the first refusal or after `threshold`
    consecutive failures (0 disables the latter). `check()` raises once it is open."""

    def __init__(self, spec: str, threshold: int = DEFAULT_THRESHOLD):
        self.spec, self.threshold = spec, int(threshold or 0)
        self.in_a_row = 0
        self.error: Exception | None = None

    @property
    def open(self) -> bool:
        return self.error is not None

    def success(self) -> None:
        self.in_a_row = 0

    def failure(self, exc: BaseException, detail: str) -> None:
        """Count one call that failed after the SDK's retries (`detail`: its redacted text)."""
        if self.error is not None:
            return
        meaning = refusal(exc)
        if meaning:
            key = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}.get(
                self.spec.split(":")[0])
            hint = f"; check {key}" if key and "key" in meaning else ""
            self.error = RequestRefused(f"{meaning} ({detail[:300]}){hint}; stopped at the first "
                                        "refusal, nothing else was sent", field=self.spec)
            return
        self.in_a_row += 1
        if self.threshold and self.in_a_row >= self.threshold:
            self.error = ItemsFailed(
                f"{self.in_a_row} calls in a row failed after the SDK's retries (last: "
                f"{detail[:300]}); the endpoint looks down, so the stage stopped early. What "
                "finished is saved; re-run to retry the rest", field=self.spec)

    def check(self) -> None:
        """Raise the stopping error once the breaker is open."""
        if self.error is not None:
            raise self.error
