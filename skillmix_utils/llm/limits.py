"""Requests-per-minute and tokens-per-minute limits (aiolimiter) for one backend.

Concurrency itself is a semaphore created per call in `base.Backend.achat`; these limiters
persist across calls so consecutive `chat` calls share one budget of requests per minute.
"""
from __future__ import annotations


class RateLimits:
    """Wait before a request until the rpm and tpm budgets allow it."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None):
        self.rpm, self.tpm = rpm, tpm
        self._limiters: dict = {}

    def _limiter(self, name: str, rate: float):
        # aiolimiter binds waiters to the running loop; `chat` may run a fresh loop per call.
        import asyncio

        from aiolimiter import AsyncLimiter

        loop = asyncio.get_running_loop()
        lim, owner = self._limiters.get(name, (None, None))
        if lim is None or owner is not loop:
            new = AsyncLimiter(rate, 60)
            if lim is not None:  # carry the used capacity over to the new loop's limiter
                new._level, new._last_check = lim._level, lim._last_check
            self._limiters[name] = (new, loop)
            lim = new
        return lim

    async def acquire(self, tokens: int = 0) -> None:
        """Block until one more request of about `tokens` tokens fits in both limits."""
        if self.rpm:
            await self._limiter("rpm", self.rpm).acquire(1)
        if self.tpm and tokens:
            await self._limiter("tpm", self.tpm).acquire(min(float(tokens), float(self.tpm)))
