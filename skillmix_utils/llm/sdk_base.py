"""What the two official-SDK backends share: the key from the environment (kept out of every
output), the cache's host field, and the async client: one kept for the backend's own loop
(`chat`), or one per `achat` call on a caller's loop. The client's response hook feeds every
response's rate-limit headers (429s and the SDK's own retries included) to the limiter.

Which client a request uses is a context variable set by its call's `_session`, not an
attribute of the backend: two `achat` calls that overlap on one backend each keep their own
client, and the one that ends first closes only its own.

Two limits the SDKs leave open are set here: a request times out after `timeout` seconds
(DEFAULT_TIMEOUT, not the SDKs' 10 minutes, so a stalled server does not hold a stage), and a
429 asking to wait longer than `max_retry_after` seconds (DEFAULT_MAX_RETRY_AFTER) is not
waited for: the item fails with a message saying so and the next run retries it. Waits up to
that bound are honoured, also where the OpenAI SDK would give up (over 2 minutes)."""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import time

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.model_identity import model_identity
from skillmix_utils.llm.base import Backend, current_ticket
from skillmix_utils.llm.failures import status_of
from skillmix_utils.llm.limits import retry_after_seconds

DEFAULT_TIMEOUT = 120.0           # seconds per attempt (options.timeout)
DEFAULT_MAX_RETRY_AFTER = 120.0   # the longest Retry-After waited for (options.max_retry_after)
LONG_WAITS = 3                    # Retry-After waits the backend makes itself, per request


class WaitTooLong(Exception):
    """A 429 whose Retry-After exceeds `max_retry_after`: the item is left for the next run."""


class SDKBackend(Backend):
    """Base of OpenAIBackend and AnthropicBackend; subclasses name their SDK and env variables."""

    sdk_module = ""          # "openai" | "anthropic"
    client_class = ""        # "AsyncOpenAI" | "AsyncAnthropic"
    key_env = ""             # OPENAI_API_KEY | ANTHROPIC_API_KEY
    probe_first = True       # learn the provider's rate limits before the first burst

    def __init__(self, model: str, *, base_url=None, timeout=None, max_retries=None,
                 key_optional: bool = False, max_retry_after=None, **options):
        key = os.environ.get(self.key_env)
        if not key:
            if not key_optional:
                raise SkillmixError(f"set the environment variable {self.key_env} to use "
                                    f"{self.kind}: models", field=self.key_env)
            key = "EMPTY"  # local OpenAI-compatible servers usually take any key
        super().__init__(model, base_url=base_url, **options)
        self._key = key
        self._secrets = (key,)
        self.timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
        self.max_retries = max_retries
        self.max_retry_after = (DEFAULT_MAX_RETRY_AFTER if max_retry_after is None
                                else float(max_retry_after))
        sdk = self._sdk()  # fail at get_backend, not mid-run, when the SDK is missing
        self.malformed_errors = (*self.malformed_errors, sdk.APIResponseValidationError)
        self._kept_client = None  # the client of the backend's own loop, kept between calls
        # the client of the call running in the current task (see `_client`)
        self._call_client = contextvars.ContextVar(f"skillmix-client-{id(self)}", default=None)

    def _sdk(self):
        import importlib

        return importlib.import_module(self.sdk_module)

    def _key_extra(self) -> dict:
        # The endpoint is part of the cache key (another server may answer differently), as it
        # is of a record's identity; the API key is not.
        return model_identity(self.spec, base_url=self.base_url)

    async def _on_request(self, request) -> None:
        # the moment the request goes on the wire is when the provider counts it
        ticket = current_ticket.get()
        if ticket is not None:
            ticket.at = time.monotonic()

    async def _on_response(self, response) -> None:
        ticket = current_ticket.get()
        if response.status_code == 429:
            self.limits.refused(ticket)
            wait = retry_after_seconds(response.headers)
            if wait is not None and wait > self.max_retry_after:
                # Neither SDK may wait (Anthropic's would sleep the whole hour) nor retry at
                # once; `_call_with_retries` turns the 429 into a clear, rescheduled failure.
                response.headers["x-should-retry"] = "false"
        self.limits.observe(response.headers, ticket)

    async def _call_with_retries(self, job, temperature, max_tokens):
        """The SDK's retries, plus waits for a Retry-After up to `max_retry_after` that the SDK
        would not make; a longer one fails the item (`WaitTooLong`), which a re-run retries."""
        for attempt in range(LONG_WAITS + 1):
            try:
                return await super()._call_with_retries(job, temperature, max_tokens)
            except Exception as exc:  # noqa: BLE001 - re-raised unless it is a long 429
                if status_of(exc) != 429:
                    raise
                wait = retry_after_seconds(getattr(getattr(exc, "response", None), "headers", None))
                if wait is None:
                    raise
                if wait > self.max_retry_after:
                    raise WaitTooLong(
                        f"rate limited: the provider asks to wait {wait:.0f} s (Retry-After), more "
                        f"than options.max_retry_after ({self.max_retry_after:g} s); left for the "
                        "next run: re-run the same command later") from None
                if attempt == LONG_WAITS:
                    raise
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    def make_client(self):
        """A fresh async SDK client (bound to the running event loop)."""
        sdk = self._sdk()
        kwargs = {"api_key": self._key,
                  "http_client": sdk.DefaultAsyncHttpxClient(
                      event_hooks={"request": [self._on_request],
                                   "response": [self._on_response]})}
        if self.base_url:
            kwargs["base_url"] = self.base_url
        kwargs["timeout"] = self.timeout
        if self.max_retries is not None:
            kwargs["max_retries"] = self.max_retries
        return getattr(sdk, self.client_class)(**kwargs)

    @property
    def _client(self):
        """The SDK client of the call this task belongs to (set by `_session`)."""
        client = self._call_client.get()
        if client is None:
            raise RuntimeError(f"{self.spec}: no SDK client outside chat()/achat()")
        return client

    @contextlib.asynccontextmanager
    async def _session(self):
        own_loop = self._runner.owns_running_loop()
        if own_loop:
            # `chat`: the backend's own loop lives on, and so do the client and its connections
            if self._kept_client is None:
                self._kept_client = self.make_client()
            client = self._kept_client
        else:
            client = self.make_client()  # a caller's loop: this call's client, closed after it
        token = self._call_client.set(client)
        try:
            yield client
        finally:
            self._call_client.reset(token)
            if not own_loop:
                await client.close()

    def close(self) -> None:
        """Close the kept client and stop the backend's loop."""
        client, self._kept_client = self._kept_client, None
        if client is not None and self._runner._loop is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(client.close(), self._runner.loop).result(5)
        super().close()
