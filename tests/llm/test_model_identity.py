""""Made the same way" on the cache's side, and vLLM engines in memory: another server or other
engine options is another model (asked again, never served an old answer), every adapter of an
engine is served its own weights, and a stage's engine is shut down when the stage is done.

vLLM is CUDA only, so a stand-in `vllm` module plays the engine; like vLLM it keeps the
adapters it has loaded by LoRA id.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from skillmix_utils.core.config import ModelSpec, StudyConfig
from skillmix_utils.llm import get_backend, loaded
from skillmix_utils.stages.context import StageRun

from .conftest import CONVS

CONV = [[{"role": "user", "content": "Say hi."}]]


def test_another_path_on_the_same_host_is_another_server(server, keys, tmp_path):
    """Two OpenAI-compatible servers behind one host (a gateway routes by path): the second
    is asked, not answered from the first one's cache."""
    def chat(base_url):
        backend = get_backend("openai-compatible:local-model", base_url=base_url,
                              cache_dir=tmp_path / "c", timeout=2.0, progress=False)
        return backend.chat(CONVS[:1], temperature=0, max_tokens=8)[0]

    assert chat(server.openai_url).ok
    other = chat(server.openai_url.removesuffix("/v1"))
    assert other.ok and not other.cached
    assert server.paths[("POST", "/chat/completions")] == 2
    # the same server again is a cache hit (credentials and a trailing slash do not count)
    assert chat(server.openai_url.replace("://", "://user:pw@") + "/").cached


@pytest.fixture
def fake_vllm(monkeypatch, tmp_path):
    """A stand-in `vllm`: records engines (options, shutdowns) and answers with the weights it
    serves, which it keeps by LoRA id as vLLM does. Models live in an empty registry."""
    log = types.SimpleNamespace(engines=[], shutdowns=0, lora_ids=[])

    class LLM:
        def __init__(self, model, **kwargs):
            self.options, self.adapters = kwargs, {}
            log.engines.append(kwargs)

        def chat(self, messages, params, lora_request=None, use_tqdm=False):
            if lora_request is None:
                weights = "base"
            else:
                log.lora_ids.append((lora_request["lora_int_id"], lora_request["lora_name"]))
                file = Path(lora_request["lora_path"]) / "adapter_model.safetensors"
                weights = self.adapters.setdefault(lora_request["lora_int_id"], file.read_text())
            text = f"{weights} weights, dtype {self.options.get('dtype')}"
            out = types.SimpleNamespace(text=text, token_ids=[1, 2])
            return [types.SimpleNamespace(outputs=[out], prompt_token_ids=[1]) for _ in messages]

        def shutdown(self):
            log.shutdowns += 1

    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = LLM, lambda **kw: kw
    lora, request = types.ModuleType("vllm.lora"), types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda **kw: kw
    for name, mod in (("vllm", vllm), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(loaded, "_MODELS", {})
    monkeypatch.setenv("SKILLMIX_CACHE", str(tmp_path / "cache"))
    log.base = tmp_path / "base"
    log.base.mkdir()
    (log.base / "config.json").write_text("{}")
    return log


def _adapter(folder, weights: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text('{"r": 8}')
    (folder / "adapter_model.safetensors").write_text(weights)
    return str(folder)


def test_other_engine_options_are_asked_again(fake_vllm, tmp_path):
    def chat(dtype):
        backend = get_backend(f"vllm:{fake_vllm.base}", cache_dir=tmp_path / "c", progress=False,
                              engine_options={"dtype": dtype})
        return backend.chat(CONV, temperature=0, max_tokens=8)[0]

    assert chat("float16").text == "base weights, dtype float16"
    other = chat("bfloat16")
    assert not other.cached and other.text == "base weights, dtype bfloat16"
    assert chat("float16").cached


def test_each_adapter_is_served_its_own_weights_and_the_stage_shuts_the_engine(fake_vllm,
                                                                             tmp_path):
    run = StageRun(StudyConfig(name="t", output_dir=str(tmp_path / "out")))
    spec = ModelSpec(spec=f"vllm:{fake_vllm.base}")
    one, two = _adapter(tmp_path / "one", "first"), _adapter(tmp_path / "two", "second")
    assert run.backend(spec, one).chat(CONV, temperature=0)[0].text.startswith("first weights")
    assert run.backend(spec, two).chat(CONV, temperature=0)[0].text.startswith("second weights")
    assert len(fake_vllm.engines) == 1 and fake_vllm.engines[0]["enable_lora"]   # one engine
    assert len(set(fake_vllm.lora_ids)) == 2                 # distinct ids and names

    # the first adapter saved again in place is new weights: a new id in the running engine
    _adapter(tmp_path / "one", "retrained")
    again = get_backend(spec.spec, adapter=one, cache_dir=tmp_path / "c", progress=False)
    assert again.chat(CONV, temperature=0)[0].text.startswith("retrained weights")
    assert len(fake_vllm.engines) == 1
    again.close()

    run.release(spec, one)
    assert fake_vllm.shutdowns == 0          # the other students still use the engine
    run.close()                              # the stage is done
    assert fake_vllm.shutdowns == 1 and loaded.held() == []
