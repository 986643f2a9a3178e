"""OpenAI chat completions and OpenAI-compatible servers (vLLM, Ollama, llama.cpp, TGI).

Keys come from OPENAI_API_KEY only; the base URL from `base_url=` or OPENAI_BASE_URL. The SDK's
own retries (429 with Retry-After, 5xx, timeouts, dropped connections) do the backoff.
"""
from __future__ import annotations

import json

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.model_identity import base_url_of
from skillmix_utils.llm.messages import MalformedReply, Reply, normal_finish
from skillmix_utils.llm.sdk_base import SDKBackend


class OpenAIBackend(SDKBackend):
    """`openai:<model>` and `openai-compatible:<model>` (the latter needs a base URL)."""

    kind = "openai"
    sdk_module, client_class = "openai", "AsyncOpenAI"
    key_env = "OPENAI_API_KEY"

    def __init__(self, model: str, *, base_url=None, compatible: bool = False, **options):
        if compatible:
            self.kind = "openai-compatible"
        base_url = base_url_of(self.kind, base_url)
        if compatible and not base_url:
            raise SkillmixError("openai-compatible needs base_url= (or OPENAI_BASE_URL), e.g. "
                                "http://localhost:8000/v1", field="base_url")
        super().__init__(model, base_url=base_url, key_optional=compatible, **options)

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
            choices = data["choices"]
            # An answer with no choice or null content is a reply, an empty one: recorded once
            # as "" (and paid once), not retried as if the body were broken.
            text = (choices[0]["message"].get("content") or "") if choices else ""
            finish = normal_finish(choices[0].get("finish_reason")) if choices else None
            usage = data.get("usage") or {}
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise MalformedReply(f"no choices[0].message.content in the reply "
                                 f"({json.dumps(data)[:200]})") from exc
        if not isinstance(text, str):
            raise MalformedReply("the reply's content is not text")
        return Reply(text, int(usage.get("prompt_tokens") or 0),
                     int(usage.get("completion_tokens") or 0), finish)

    async def _call(self, messages, *, temperature, max_tokens, seed) -> Reply:
        body = self.request_body(messages, temperature=temperature, max_tokens=max_tokens,
                                 seed=seed)
        # The client's generic `post` (the SDK's way to a raw response) keeps its auth, headers,
        # retries and timeouts but skips the typed layer: walking the request through its
        # TypedDict transform and building pydantic objects of the reply was about a quarter of
        # the client's CPU per request, and at concurrency 32 that CPU is the bottleneck.
        resp = await self._client.post("/chat/completions", body=body, cast_to=bytes)
        return self.parse_reply(json.loads(resp))
