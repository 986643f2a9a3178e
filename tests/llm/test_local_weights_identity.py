"""Local students on the embedded model: weights saved again in place, or loaded in another dtype
or quantization, are another model (asked again, never handed the old weights' cached text),
and a stage frees each local model when it is done with it."""
from __future__ import annotations

import gc
import shutil
import weakref

import pytest

from skillmix_utils.core.config import ModelSpec, StudyConfig
from skillmix_utils.llm import get_backend
from skillmix_utils.stages.context import StageRun

pytestmark = pytest.mark.slow

CONV = [[{"role": "user", "content": "Name a colour."}]]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: the machine's cores are shared (see test_hf_backend.py)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _chat(folder, cache, **options):
    backend = get_backend(f"hf:{folder}", cache_dir=cache, progress=False, **options)
    result = backend.chat(CONV, temperature=0, max_tokens=6)[0]
    backend.close()
    assert result.ok, result.error
    return result


def test_a_checkpoint_saved_again_in_place_is_asked_again(embedded_model, tmp_path):
    import torch

    from skillmix_utils.llm.models import load_causal_lm

    ckpt, cache = tmp_path / "student", tmp_path / "cache"
    shutil.copytree(embedded_model, ckpt)
    before = _chat(ckpt, cache)
    assert _chat(ckpt, cache).cached

    # "retrain" the full checkpoint: other weights saved into the same folder
    lm = load_causal_lm(str(ckpt), dtype="float32")
    with torch.no_grad():
        torch.manual_seed(0)
        for p in lm.parameters():
            p.add_(0.05 * torch.randn_like(p))
    lm.save_pretrained(ckpt)
    del lm

    after = _chat(ckpt, cache)
    assert not after.cached and after.text != before.text
    assert after.text == _chat(ckpt, tmp_path / "fresh").text    # the new weights' own text


def test_another_dtype_or_quantization_is_asked_again(embedded_model, tmp_path):
    cache = tmp_path / "cache"
    fp32 = _chat(embedded_model, cache, dtype="float32")
    bf16 = _chat(embedded_model, cache, dtype="bfloat16")
    assert not bf16.cached
    assert _chat(embedded_model, cache, dtype="float32").cached and fp32.ok
    # 4-bit: another cache key (loading it is bitsandbytes' business, checked elsewhere)
    plain = get_backend(f"hf:{embedded_model}", cache_dir=cache, progress=False)
    nf4 = get_backend(f"hf:{embedded_model}", cache_dir=cache, progress=False, quantization="nf4")
    assert plain.key(CONV[0], 0, 6, None, 0) != nf4.key(CONV[0], 0, 6, None, 0)


def test_a_stage_frees_each_local_student_before_the_next(embedded_model, tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLMIX_CACHE", str(tmp_path / "cache"))
    run = StageRun(StudyConfig(name="t", output_dir=str(tmp_path / "out")))
    first = ModelSpec(spec=f"hf:{embedded_model}", options={"dtype": "float32"})
    second = ModelSpec(spec=f"hf:{embedded_model}", options={"dtype": "bfloat16"})

    student = run.backend(first)
    assert student.chat(CONV, temperature=0, max_tokens=4)[0].ok
    model = weakref.ref(student.load()[0])
    run.release(first)                       # what evaluate does after each student
    gc.collect()
    assert model() is None                   # gone, though the backend object still exists

    student = run.backend(second)
    assert student.chat(CONV, temperature=0, max_tokens=4)[0].ok
    model = weakref.ref(student.load()[0])
    run.close()                              # the stage is done
    gc.collect()
    assert model() is None
