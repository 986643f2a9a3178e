"""One event loop per backend, in a daemon thread, kept between `chat` calls.

`asyncio.run` per call made a new loop, so each call built a new SDK client (a TLS context
loaded from disk) and opened every connection again, and a study makes thousands of calls.
Here the loop, the client and its warm connections live as long as the backend. It also
serves callers inside a running loop (Jupyter): they wait on a thread, as before.
"""
from __future__ import annotations

import asyncio
import os
import threading


class LoopThread:
    """Runs coroutines on a private event loop; `close()` (or garbage collection) stops it."""

    def __init__(self, name: str = "skillmix-llm"):
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The private loop, started on first use (and again after a fork)."""
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name=self.name, daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def owns_running_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def run(self, coro):
        """Run `coro` on the private loop and return its result (Ctrl-C cancels it)."""
        if self.owns_running_loop():
            coro.close()
            raise RuntimeError("chat() called from inside the backend's own loop; await achat()")
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result()
        except BaseException:
            fut.cancel()
            raise

    def close(self) -> None:
        """Stop the loop (its thread ends); a later `run` starts a new one."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None and self._pid == os.getpid() and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
