"""Why a reply ended reaches the caller in one vocabulary ("stop", "length"), survives the
response cache, and leaves cache keys (so old caches) as they were."""
from __future__ import annotations

import pytest

from skillmix_utils.llm.anthropic_backend import AnthropicBackend
from skillmix_utils.llm.base import Backend
from skillmix_utils.llm.messages import Reply
from skillmix_utils.llm.openai_backend import OpenAIBackend

from .conftest import CONVS, make


def test_each_provider_word_for_a_cut_off_reply_reads_length():
    openai = {"choices": [{"finish_reason": "length", "message": {"content": "Bees hum and"}}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 3}}
    anthropic = {"content": [{"type": "text", "text": "Bees hum and"}], "stop_reason": "max_tokens",
                 "usage": {"input_tokens": 3, "output_tokens": 3}}
    assert OpenAIBackend.parse_reply(openai).finish_reason == "length"
    assert AnthropicBackend.parse_reply(anthropic).finish_reason == "length"
    anthropic["stop_reason"] = "end_turn"
    assert AnthropicBackend.parse_reply(anthropic).finish_reason == "stop"
    del openai["choices"][0]["finish_reason"]
    assert OpenAIBackend.parse_reply(openai).finish_reason is None      # not said: unknown


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_the_wire_reason_reaches_the_result(kind, server, keys, tmp_path):
    backend = make(kind, server, tmp_path)
    try:
        res = backend.chat(CONVS[:2], max_tokens=16)
    finally:
        backend.close()
    assert [r.finish_reason for r in res] == ["stop", "stop"]


class _Cut(Backend):
    """Every reply is cut off by max_tokens."""
    kind = "cut"

    async def _call(self, messages, *, temperature, max_tokens, seed) -> Reply:
        return Reply("Bees hum and", 3, max_tokens, "length")


def test_the_reason_is_cached_beside_the_text_and_old_entries_read_from_their_usage(tmp_path):
    backend = _Cut("m", cache_dir=tmp_path, progress=False)
    key = backend.key(CONVS[0], 0.7, 4, None, 0)
    first = backend.chat(CONVS[:1], max_tokens=4)[0]
    again = backend.chat(CONVS[:1], max_tokens=4)[0]
    assert (first.finish_reason, first.cached) == ("length", False)
    assert (again.finish_reason, again.cached) == ("length", True)
    # the key is the one a skillmix without finish reasons computed: same request, same key
    assert backend.cache.get(key)["finish_reason"] == "length"
    old = {"text": "An old reply", "input_tokens": 1, "output_tokens": 2, "cost_usd": 0.0,
           "model": "cut:m"}
    backend.cache.put(key, old)
    hit = backend.chat(CONVS[:1], max_tokens=4)[0]
    assert hit.cached and hit.text == "An old reply" and hit.finish_reason is None
    # an old reply that used every token it was allowed was cut off
    backend.cache.put(key, {**old, "output_tokens": 4})
    assert backend.chat(CONVS[:1], max_tokens=4)[0].finish_reason == "length"
    backend.close()
