"""Anthropic messages (`anthropic:<model>`).

anthropic 2.12's `Messages.create` has no `temperature` keyword, but the wire protocol takes
it, so it goes in `extra_body`. System messages go in `system=`. Anthropic has no seed: it is
recorded with the result (and in the cache key) but not sent.
"""
from __future__ import annotations

import json

from skillmix_utils.core.model_identity import base_url_of
from skillmix_utils.llm.messages import MalformedReply, Reply, normal_finish
from skillmix_utils.llm.sdk_base import SDKBackend


def split_system(messages: list[dict]) -> tuple[str | None, list[dict]]:
    """Separate system messages (joined) from the user/assistant turns.

    >>> split_system([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    ('Be brief.', [{'role': 'user', 'content': 'Hi'}])
    """
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system") or None
    return system, [m for m in messages if m["role"] != "system"]


class AnthropicBackend(SDKBackend):
    """`anthropic:<model>` through the official SDK."""

    kind = "anthropic"
    sdk_module, client_class = "anthropic", "AsyncAnthropic"
    key_env = "ANTHROPIC_API_KEY"

    def __init__(self, model: str, *, base_url=None, **options):
        super().__init__(model, base_url=base_url_of(self.kind, base_url), **options)

    def request_params(self, messages, *, temperature, max_tokens, seed=None) -> dict:
        """The messages-API parameters of one request (also a batch request's `params`)."""
        system, turns = split_system(messages)
        params = {"model": self.model, "max_tokens": max_tokens, "messages": turns,
                  "temperature": temperature}
        if system:
            params["system"] = system
        return params

    @staticmethod
    def parse_reply(data) -> Reply:
        """Text and usage from a Message object or dict; MalformedReply when unusable."""
        if hasattr(data, "model_dump"):
            data = data.model_dump()
        try:
            blocks = data["content"] or []       # null content: an empty reply, recorded once
            text = "".join(b.get("text") or "" for b in blocks if b.get("type") == "text")
            usage = data.get("usage") or {}
        except (KeyError, TypeError, AttributeError) as exc:
            raise MalformedReply("no content blocks in the reply") from exc
        return Reply(text, int(usage.get("input_tokens") or 0),
                     int(usage.get("output_tokens") or 0), normal_finish(data.get("stop_reason")))

    async def _call(self, messages, *, temperature, max_tokens, seed) -> Reply:
        p = self.request_params(messages, temperature=temperature, max_tokens=max_tokens)
        # The generic `post`: the SDK's auth, version header, retries and timeouts without its
        # typed layer (a quarter of the client's CPU per request; see openai_backend._call).
        resp = await self._client.post("/v1/messages", body=p, cast_to=bytes)
        return self.parse_reply(json.loads(resp))
