"""OpenAI chat completions and OpenAI-compatible servers (vLLM, Ollama, llama.cpp, TGI).

Keys come from OPENAI_API_KEY only; the base URL from `base_url=` or OPENAI_BASE_URL. The SDK's
own retries (429 with Retry-After, 5xx, timeouts, dropped connections) do the backoff.
"""
from __future__ import annotations

import contextlib
import json
import os
from urllib.parse import urlsplit

from ..errors import SkillmixError
from .base import Backend, MalformedReply, Reply

DEFAULT_HOST = "api.openai.com"


class OpenAIBackend(Backend):
    """`openai:<model>` and `openai-compatible:<model>` (the latter needs a base URL)."""

    kind = "openai"

    def __init__(self, model: str, *, base_url=None, timeout=None, max_retries=None,
                 compatible: bool = False, **options):
        if compatible:
            self.kind = "openai-compatible"
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        if compatible and not base_url:
            raise SkillmixError("openai-compatible needs base_url= (or OPENAI_BASE_URL), e.g. "
                                "http://localhost:8000/v1", field="base_url")
        key = os.environ.get("OPENAI_API_KEY")
        if not key:
            if not compatible:
                raise SkillmixError("set the environment variable OPENAI_API_KEY "
                                    "to use an openai: model", field="OPENAI_API_KEY")
            key = "EMPTY"  # local servers usually take any key
        super().__init__(model, base_url=base_url, **options)
        self._key = key
        self._secrets = (key,)
        self.timeout, self.max_retries = timeout, max_retries
        import openai  # noqa: F401 - fail at get_backend, not mid-run, when it is missing
        self.malformed_errors = (*self.malformed_errors, openai.APIResponseValidationError)
        self._client = None

    def _key_extra(self) -> dict:
        host = urlsplit(self.base_url).netloc if self.base_url else DEFAULT_HOST
        return {"host": host}

    def make_client(self):
        """A fresh AsyncOpenAI client (bound to the running event loop)."""
        import openai

        kwargs = {"api_key": self._key}
        if self.base_url:
            kwargs["base_url"] = self.base_url
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        if self.max_retries is not None:
            kwargs["max_retries"] = self.max_retries
        return openai.AsyncOpenAI(**kwargs)

    @contextlib.asynccontextmanager
    async def _session(self):
        self._client = self.make_client()
        try:
            yield self._client
        finally:
            await self._client.close()
            self._client = None

    def request_body(self, messages, *, temperature, max_tokens, seed) -> dict:
        """The chat-completions body of one sample (also a batch line's body)."""
        body = {"model": self.model, "messages": messages, "temperature": temperature,
                "max_tokens": max_tokens, "n": 1}
        if seed is not None:
            body["seed"] = seed
        return body

    @staticmethod
    def parse_reply(data) -> Reply:
        """Text and usage from a chat-completion object or dict; MalformedReply when unusable."""
        if hasattr(data, "model_dump"):
            data = data.model_dump()
        try:
            text = data["choices"][0]["message"]["content"]
            usage = data.get("usage") or {}
        except (KeyError, IndexError, TypeError) as exc:
            raise MalformedReply(f"no choices[0].message.content in the reply "
                                 f"({json.dumps(data)[:200]})") from exc
        if text is None:
            raise MalformedReply("the reply has no text content")
        return Reply(text, int(usage.get("prompt_tokens") or 0),
                     int(usage.get("completion_tokens") or 0))

    async def _call(self, messages, *, temperature, max_tokens, seed) -> Reply:
        body = self.request_body(messages, temperature=temperature, max_tokens=max_tokens,
                                 seed=seed)
        body.pop("model")
        resp = await self._client.chat.completions.create(model=self.model, **body)
        return self.parse_reply(resp)
