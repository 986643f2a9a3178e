"""What the two official-SDK backends share: the key from the environment (kept out of every
output), the cache's host field, and one async client per session bound to the running loop."""
from __future__ import annotations

import contextlib
import os
from urllib.parse import urlsplit

from ..errors import SkillmixError
from .base import Backend


class SDKBackend(Backend):
    """Base of OpenAIBackend and AnthropicBackend; subclasses name their SDK and env variables."""

    sdk_module = ""          # "openai" | "anthropic"
    client_class = ""        # "AsyncOpenAI" | "AsyncAnthropic"
    key_env = ""             # OPENAI_API_KEY | ANTHROPIC_API_KEY
    default_host = ""

    def __init__(self, model: str, *, base_url=None, timeout=None, max_retries=None,
                 key_optional: bool = False, **options):
        key = os.environ.get(self.key_env)
        if not key:
            if not key_optional:
                raise SkillmixError(f"set the environment variable {self.key_env} to use "
                                    f"{self.kind}: models", field=self.key_env)
            key = "EMPTY"  # local OpenAI-compatible servers usually take any key
        super().__init__(model, base_url=base_url, **options)
        self._key = key
        self._secrets = (key,)
        self.timeout, self.max_retries = timeout, max_retries
        sdk = self._sdk()  # fail at get_backend, not mid-run, when the SDK is missing
        self.malformed_errors = (*self.malformed_errors, sdk.APIResponseValidationError)
        self._client = None

    def _sdk(self):
        import importlib

        return importlib.import_module(self.sdk_module)

    def _key_extra(self) -> dict:
        # The host is part of the cache key (another server may answer differently); the key is not.
        return {"host": urlsplit(self.base_url).netloc if self.base_url else self.default_host}

    def make_client(self):
        """A fresh async SDK client (bound to the running event loop)."""
        kwargs = {"api_key": self._key}
        if self.base_url:
            kwargs["base_url"] = self.base_url
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        if self.max_retries is not None:
            kwargs["max_retries"] = self.max_retries
        return getattr(self._sdk(), self.client_class)(**kwargs)

    @contextlib.asynccontextmanager
    async def _session(self):
        self._client = self.make_client()
        try:
            yield self._client
        finally:
            await self._client.close()
            self._client = None
