"""vllm: what can be checked without vLLM installed (it is CUDA only)."""
from __future__ import annotations

import importlib.util

import pytest

from skillmix_utils.errors import SkillmixError
from skillmix_utils.llm import get_backend
from skillmix_utils.llm.vllm_backend import build_requests

pytestmark = pytest.mark.skipif(importlib.util.find_spec("vllm") is not None,
                                reason="vllm is installed: these check its absence")


def test_missing_vllm_is_a_clear_error():
    with pytest.raises(SkillmixError, match="pip install"):
        get_backend("vllm:smollm2-135m-instruct")


def test_request_building():
    convs = [[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]]
    req = build_requests(convs, temperature=0.7, max_tokens=64, seed=5, adapter="/a")
    assert req["messages"] == convs
    assert req["sampling"] == {"temperature": 0.7, "max_tokens": 64, "n": 1, "seed": 5}
    assert req["lora"] == {"lora_name": "adapter", "lora_int_id": 1, "lora_path": "/a"}
    assert req["engine"] == {"enable_lora": True, "max_lora_rank": 64}
    base = build_requests(convs, temperature=0, max_tokens=8)
    assert base["lora"] is None and base["engine"] == {"enable_lora": False}
