"""A vllm: student is compared with transformers like with like, and its engine reserves only the
context its texts need (issue 19, item 9).

vLLM is CUDA only, so a stand-in `vllm` module plays the engine: it records how it was started
and, asked for greedy log-probabilities (the parity check), decodes with the real embedded model
through transformers in the dtype it was given, the LoRA request's adapter applied unmerged, as
vLLM does; the student's texts themselves are the scripted study's.
"""
from __future__ import annotations

import sys
import types

import pytest

from skillmix_utils.core.config import StudyConfig
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.records import RecordStore
from skillmix_utils.llm import loaded
from skillmix_utils.llm.hf_backend import HFBackend
from skillmix_utils.stages.evaluate import run_evaluation

from .scripted import ANSWERS, combos, study_tree

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: the machine's cores are shared (see test_hf_backend.py)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def fake_vllm(monkeypatch, *, serves_adapter: bool = True) -> list:
    """Install the stand-in; returns the list of engines' start arguments."""
    engines: list = []
    cs = combos()

    class LLM:
        def __init__(self, model, **kwargs):
            engines.append(kwargs)
            self.model, self.kwargs = model, kwargs

        def chat(self, messages, params, lora_request=None, use_tqdm=False):
            if params.get("logprobs"):
                return self._decode(messages, params, lora_request)
            out = []
            for conv in messages:     # the scripted student: a tagged answer at turn 2
                c = next((c for c in cs if ", ".join(c.skills) in conv[0]["content"]), cs[0])
                g = int(params.get("seed") or 0) % 2
                text = f"Answer: {ANSWERS[(c.index, g)](c)}\nExplanation: scripted."
                out.append(types.SimpleNamespace(prompt_token_ids=[1], outputs=[
                    types.SimpleNamespace(text=text, token_ids=[1, 2, 3], logprobs=None)]))
            return out

        def _decode(self, messages, params, lora_request):
            adapter = lora_request["lora_path"] if lora_request and serves_adapter else None
            engine = HFBackend(self.model, adapter=adapter, dtype=self.kwargs["dtype"],
                               merge_adapter=False, use_cache=False)
            traces = engine.greedy_traces(messages, max_tokens=params["max_tokens"],
                                          top_k=params["logprobs"])
            engine.close()
            return [types.SimpleNamespace(prompt_token_ids=[1], outputs=[types.SimpleNamespace(
                text=t.text, token_ids=t.tokens,
                logprobs=[{k: types.SimpleNamespace(logprob=v) for k, v in step.items()}
                          for step in t.top])]) for t in traces]

        def shutdown(self):
            pass

    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = LLM, lambda **kw: kw
    lora, request = types.ModuleType("vllm.lora"), types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda **kw: kw
    for name, mod in (("vllm", vllm), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(loaded, "_MODELS", {})
    return engines


@pytest.fixture(scope="module")
def tuned_adapter(tmp_path_factory, embedded_model):
    """A LoRA adapter that changes what the embedded model writes (random A and B)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from skillmix_utils.llm.models import load_causal_lm

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tuned") / "adapter"
    lm = get_peft_model(load_causal_lm(embedded_model, dtype="float32"),
                        LoraConfig(r=8, target_modules=["q_proj", "v_proj"],
                                   init_lora_weights=False, task_type="CAUSAL_LM"))
    lm.save_pretrained(folder)
    return str(folder)


def study(server, out, model, adapter):
    tree = study_tree(server, out)
    tree["evaluation"]["students"] = [{
        "name": "tuned", "adapter": adapter, "parity_prompts": 2,
        "model": {"spec": f"vllm:{model}", "temperature": 0.7, "max_tokens": 12}}]
    return StudyConfig.model_validate(tree)


def test_the_engine_gets_the_references_dtype_and_the_context_the_texts_need(
        api_env, scripted_server, embedded_model, tuned_adapter, monkeypatch):
    engines = fake_vllm(monkeypatch)
    cfg = study(scripted_server, api_env / "out", embedded_model, tuned_adapter)
    run_evaluation(cfg)                  # the parity check passes: the same model agrees
    assert len(RecordStore(cfg.out / "eval" / "records.jsonl").records()) == 6
    engine = engines[0]
    # told its dtype, the one transformers loads in here (vLLM's "auto" would be the
    # checkpoint's); the context is two turns and two 12-token replies, not the model's 8k
    assert engine["dtype"] == "float32"
    assert engine["max_model_len"] == 512


def test_an_engine_serving_other_weights_is_stopped(api_env, scripted_server, embedded_model,
                                                    tuned_adapter, monkeypatch):
    fake_vllm(monkeypatch, serves_adapter=False)       # e.g. a LoRA setting vLLM ignores
    cfg = study(scripted_server, api_env / "out", embedded_model, tuned_adapter)
    with pytest.raises(SkillmixError, match="disagree on 100% of 2") as info:
        run_evaluation(cfg)
    assert "log-probabilities differ" in str(info.value)    # the tuned weights are not served
    assert not (cfg.out / "eval" / "records.jsonl").exists() or \
        not RecordStore(cfg.out / "eval" / "records.jsonl").records()
