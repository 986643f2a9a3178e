"""The embedded model on the CPU through the same interface (hf: backend)."""
from __future__ import annotations

import pytest

from skillmix_utils.llm import get_backend

PROMPTS = ["Say hello.", "What is the capital of France? Answer in one short sentence, please.",
           "Name a fruit.", "Count from one to three."]
CONVS = [[{"role": "user", "content": p}] for p in PROMPTS]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine, OpenMP threads spinning against other
    processes made these tests ~5x slower; results are identical."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_embedded_model_generation(embedded_model, tmp_path):
    spec = f"hf:{embedded_model}"
    batched = get_backend(spec, cache_dir=tmp_path / "c", batch_size=4, progress=False)
    single = get_backend(spec, use_cache=False, batch_size=1, progress=False)
    res = batched.chat(CONVS, temperature=0, max_tokens=8)
    one = single.chat(CONVS, temperature=0, max_tokens=8)
    assert all(r.ok and r.text for r in res), [r.error for r in res]
    assert [r.text for r in res] == [r.text for r in one]  # batched greedy == one at a time
    assert all(r.input_tokens > 0 and 0 < r.output_tokens <= 8 and r.cost_usd == 0 for r in res)
    assert res[0].params == {"temperature": 0, "max_tokens": 8, "n": 1, "seed": None,
                             "model": spec}
    again = batched.chat(CONVS, temperature=0, max_tokens=8)
    assert all(r.cached for r in again) and [r.text for r in again] == [r.text for r in res]
    # seeded sampling: n samples, reproducible, sample j the same whatever n
    s2 = batched.chat(CONVS[:1], temperature=0.9, max_tokens=6, n=2, seed=3)[0]
    s3 = batched.chat(CONVS[:1], temperature=0.9, max_tokens=6, n=3, seed=3)[0]
    assert len(s2.texts) == 2 and s3.texts[:2] == s2.texts and not s3.cached
    fresh = single.chat(CONVS[:1], temperature=0.9, max_tokens=6, n=1, seed=3)[0]
    assert fresh.texts == s2.texts[:1]  # seeded sampling is reproducible


@pytest.mark.slow
def test_yes_no_probabilities(embedded_model):
    be = get_backend(f"hf:{embedded_model}", use_cache=False, batch_size=4, progress=False)
    convs = [[{"role": "user", "content": q + " Answer Yes or No."}]
             for q in ("Is water wet?", "Is the sun cold?", "Is two bigger than one?")]
    p = be.yes_no_probabilities(convs)
    assert len(p) == 3 and all(0.0 < x < 1.0 for x in p)
    p1 = [be.yes_no_probabilities([c], batch_size=1)[0] for c in convs]
    assert p == pytest.approx(p1, abs=1e-4)  # left padding does not change the answer
    again, tokens = be.yes_no_probabilities(convs, with_tokens=True)
    assert again == pytest.approx(p) and len(tokens) == 3 and all(t > 5 for t in tokens)


@pytest.mark.slow
def test_adapter_is_part_of_the_cache_key(embedded_model, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    from skillmix_utils.llm.models import load_causal_lm

    lm = get_peft_model(load_causal_lm(embedded_model),
                        LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    lm.save_pretrained(tmp_path / "adapter")
    base = get_backend(f"hf:{embedded_model}", cache_dir=tmp_path / "c", progress=False)
    tuned = get_backend(f"hf:{embedded_model}", adapter=str(tmp_path / "adapter"),
                        cache_dir=tmp_path / "c", progress=False)
    msgs = CONVS[0]
    k_base, k1 = base.key(msgs, 0, 8, None, 0), tuned.key(msgs, 0, 8, None, 0)
    assert k_base != k1
    r = tuned.chat([msgs], temperature=0, max_tokens=4)[0]
    assert r.ok
    with torch.no_grad():  # "retrain": new weights in the same folder
        for name, p in lm.named_parameters():
            if "lora_B" in name:
                p.add_(0.01)
    lm.save_pretrained(tmp_path / "adapter")
    retrained = get_backend(f"hf:{embedded_model}", adapter=str(tmp_path / "adapter"),
                            cache_dir=tmp_path / "c", progress=False)
    assert retrained.key(msgs, 0, 8, None, 0) != k1
    assert not retrained.chat([msgs], temperature=0, max_tokens=4)[0].cached


@pytest.mark.slow
def test_an_adapter_is_merged_for_decoding_and_answers_as_unmerged(embedded_model, tmp_path):
    """The tuned student decodes with the LoRA product folded into its weights (as fast as the
    base model) and writes what the unmerged adapter writes."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    from skillmix_utils.llm.models import load_causal_lm

    torch.manual_seed(0)
    lm = get_peft_model(load_causal_lm(embedded_model), LoraConfig(r=4, target_modules="all-linear"))
    with torch.no_grad():               # a trained adapter: B is no longer zero
        for name, p in lm.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    lm.save_pretrained(tmp_path / "adapter")
    tuned = get_backend(f"hf:{embedded_model}", adapter=str(tmp_path / "adapter"),
                        cache_dir=tmp_path / "c", progress=False)
    merged, tok, _ = tuned.load()
    assert not isinstance(merged, PeftModel)
    unmerged = load_causal_lm(embedded_model, adapter=str(tmp_path / "adapter")).eval()
    ids = tok(tuned.render(CONVS[0]), return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, unmerged(ids).logits, rtol=1e-3, atol=1e-3)
        base = load_causal_lm(embedded_model).eval()(ids).logits
    assert (base - unmerged(ids).logits).abs().max() > 1e-2      # the adapter does change it


@pytest.mark.slow
def test_a_reply_cut_off_by_max_tokens_says_length(embedded_model):
    backend = get_backend(f"hf:{embedded_model}", use_cache=False, progress=False)
    cut = backend.chat(CONVS[:1], temperature=0, max_tokens=2)[0]
    ended = backend.chat([[{"role": "user", "content": "Answer with one word: is the sky blue?"}]],
                         temperature=0, max_tokens=48)[0]
    backend.close()
    assert cut.finish_reason == "length"
    assert ended.finish_reason == "stop" and ended.output_tokens < 48


def test_questions_sharing_a_text_score_as_if_each_were_scored_whole(tiny_model):
    """The judge runs the k + 3 questions' shared beginning once (hf_backend._last_logits_shared):
    the probabilities equal a plain forward pass over each whole prompt."""
    import torch

    be = get_backend(f"hf:{tiny_model}", use_cache=False, progress=False)
    text = "A story about a lighthouse keeper who counts the waves every night. " * 6
    convs = [[{"role": "user", "content": f"{text}\nQuestion {i}: {q} Answer Yes or No."}]
             for i, q in enumerate(("Is it about the sea?", "Is there a metaphor?",
                                    "Is it under five sentences?", "Is it funny?"))]
    shared = be.yes_no_probabilities(convs)
    lm, tok, _ = be.load()
    yes = list({tok(w, add_special_tokens=False)["input_ids"][0] for w in ("Yes", " Yes")})
    no = list({tok(w, add_special_tokens=False)["input_ids"][0] for w in ("No", " No")})
    whole = []
    for c in convs:
        ids = tok(be.render(c), add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            p = torch.softmax(lm(input_ids=ids).logits[0, -1].float(), dim=-1)
        whole.append((p[yes].sum() / (p[yes].sum() + p[no].sum())).item())
    assert shared == pytest.approx(whole, abs=1e-5)
    assert len(set(round(x, 6) for x in whole)) > 1       # the questions are told apart
