"""vllm: what can be checked without vLLM installed (it is CUDA only)."""
from __future__ import annotations

import importlib.util

import pytest

from skillmix_utils.core.errors import SkillmixError
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
    assert req["lora"] == {"lora_name": "adapter-1", "lora_int_id": 1, "lora_path": "/a"}
    assert req["engine"] == {"enable_lora": True, "max_lora_rank": 64}
    base = build_requests(convs, temperature=0, max_tokens=8)
    assert base["lora"] is None and base["engine"] == {"enable_lora": False}


def _fake_vllm(monkeypatch, seen: list):
    """A stand-in `vllm` module that records how the engine was built and when."""
    import sys
    import types

    from skillmix_utils.llm import loaded

    class LLM:
        def __init__(self, model, **kwargs):
            # The transformers reference is gone before vLLM claims the GPU.
            seen.append({"model": model, **kwargs,
                         "hf_models_loaded": sum(k[0] == "hf" for k in loaded.held())})

        def chat(self, messages, params, lora_request=None, use_tqdm=False):
            out = types.SimpleNamespace(text=" vllm says hi", token_ids=[1, 2, 3],
                                        logprobs=[{t: -0.1} for t in (1, 2, 3)])
            return [types.SimpleNamespace(outputs=[out], prompt_token_ids=[1]) for _ in messages]

    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = LLM, lambda **kw: kw
    lora, request = types.ModuleType("vllm.lora"), types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda **kw: kw
    for name, mod in (("vllm", vllm), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(loaded, "_MODELS", {})


def test_max_lora_rank_comes_from_the_adapter(tmp_path):
    from skillmix_utils.llm.vllm_backend import adapter_rank, vllm_lora_rank

    (tmp_path / "adapter_config.json").write_text('{"r": 16}')
    assert adapter_rank(tmp_path) == 16 and vllm_lora_rank(16) == 16
    assert vllm_lora_rank(adapter_rank(tmp_path) * 4) == 64
    with pytest.raises(SkillmixError, match="adapter_config.json"):
        adapter_rank(tmp_path / "nothing")


@pytest.mark.slow
def test_parity_runs_reference_then_vllm_with_config_options(monkeypatch, tmp_path,
                                                             embedded_model):
    from peft import LoraConfig, get_peft_model

    from skillmix_utils.llm.models import load_causal_lm
    from skillmix_utils.llm.vllm_backend import parity_check

    adapter = tmp_path / "adapter"
    model = get_peft_model(load_causal_lm(embedded_model, dtype="float32"),
                           LoraConfig(r=32, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    model.save_pretrained(adapter)
    seen: list = []
    _fake_vllm(monkeypatch, seen)
    options = {"gpu_memory_utilization": 0.85, "tensor_parallel_size": 4, "max_model_len": 2048,
               "dtype": "bfloat16"}
    result = parity_check(embedded_model, str(adapter), ["Say hi.", "Name a colour."],
                          max_tokens=4, engine_options=options)
    assert len(seen) == 1
    engine = seen[0]
    assert engine["hf_models_loaded"] == 0                 # one after the other
    assert {k: engine[k] for k in options} == options      # the config's engine options
    assert engine["enable_lora"] is True and engine["max_lora_rank"] == 32   # from the adapter
    assert result["match"] == 0.0 and [p[0] for p in result["pairs"]] == ["vllm says hi"] * 2
    assert all(p[1] for p in result["pairs"])              # the reference did generate


def test_engine_options_reach_the_engine_through_get_backend(monkeypatch, tmp_path):
    seen: list = []
    _fake_vllm(monkeypatch, seen)
    backend = get_backend("vllm:smollm2-135m-instruct", use_cache=False,
                          engine_options={"tensor_parallel_size": 2})
    backend.engine()
    assert seen[0]["tensor_parallel_size"] == 2 and seen[0]["enable_lora"] is False


def test_the_engine_is_told_its_dtype_and_the_context_to_reserve(monkeypatch):
    from skillmix_utils.llm.models import resolve_dtype

    seen: list = []
    _fake_vllm(monkeypatch, seen)
    # nothing configured: the dtype transformers loads in (never vLLM's "auto", the
    # checkpoint's), and the context the evaluation asks for (never the model's whole window)
    get_backend("vllm:smollm2-135m-instruct", use_cache=False, max_model_len=1536).engine()
    assert seen[0]["dtype"] == resolve_dtype("auto") and seen[0]["max_model_len"] == 1536
    # the config's engine options win
    get_backend("vllm:smollm2-135m-instruct", use_cache=False, max_model_len=1536,
                engine_options={"dtype": "float16", "max_model_len": 4096}).engine()
    assert seen[1]["dtype"] == "float16" and seen[1]["max_model_len"] == 4096
