"""A student of a QLoRA study is evaluated the way it was trained: its base model in 4-bit NF4
(bitsandbytes), unless its model options say `quantization: none` (issue 19, item 3)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from skillmix_utils.core.config import ModelSpec, StudentSpec, load_study_config
from skillmix_utils.core.identity import writer_identity
from skillmix_utils.stages.context import StageRun
from skillmix_utils.stages.students import resolve_student
from skillmix_utils.stages.train import run_dir

DATA = Path(__file__).resolve().parents[1] / "data"


def qlora_study(out: Path, mode: str = "qlora"):
    return load_study_config(DATA / "train_small.yaml",
                             {"output_dir": str(out), "train.mode": mode})


def fake_training(cfg, base: str, *, summary_mode: str | None = None, merged: bool = False):
    """What a finished run leaves: a real LoRA adapter of the embedded model, its summary."""
    from peft import LoraConfig, get_peft_model

    from skillmix_utils.llm.models import load_causal_lm

    root = run_dir(cfg)
    lm = get_peft_model(load_causal_lm(base, dtype="float32"),
                        LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    lm.save_pretrained(root / "adapter")
    (root / "train_summary.json").write_text(json.dumps({"mode": summary_mode or cfg.train.mode}))
    if merged:    # merge_adapter: true leaves a bf16/fp32 merged copy beside the adapter
        (root / "model").mkdir()
        (root / "model" / "config.json").write_text("{}")
    return root


def student(options=None, adapter="@train", spec="hf:smollm2-135m-instruct"):
    return StudentSpec(name="tuned", adapter=adapter,
                       model=ModelSpec(spec=spec, options={"dtype": "float32", **(options or {})}))


def four_bit_layers(cfg, s) -> int:
    import bitsandbytes as bnb

    spec, adapter = resolve_student(cfg, s)
    run = StageRun(cfg)
    try:
        lm = run.backend(spec, adapter).load()[0]
        return sum(isinstance(m, bnb.nn.Linear4bit) for m in lm.modules())
    finally:
        run.close()


@pytest.mark.slow
def test_a_qlora_student_loads_in_4_bit_unless_told_otherwise(tmp_path, embedded_model):
    cfg = qlora_study(tmp_path / "study")
    fake_training(cfg, embedded_model)

    tuned = student()
    spec, adapter = resolve_student(cfg, tuned)
    assert adapter and writer_identity(spec, adapter)["quantization"] == "nf4"
    assert four_bit_layers(cfg, tuned) > 0                      # bitsandbytes NF4 layers

    full = student({"quantization": "none"})
    spec, adapter = resolve_student(cfg, full)
    assert writer_identity(spec, adapter)["quantization"] is None   # as any full-precision student
    assert four_bit_layers(cfg, full) == 0


def test_the_base_student_of_a_qlora_study_is_4_bit_too(tmp_path):
    cfg = qlora_study(tmp_path / "study")
    base = student(adapter=None)
    spec, _ = resolve_student(cfg, base)
    assert spec.options["quantization"] == "nf4"
    other = student(adapter=None, spec="hf:some-org/another-model")
    assert "quantization" not in resolve_student(cfg, other)[0].options
    lora = qlora_study(tmp_path / "lora", mode="lora")
    assert "quantization" not in resolve_student(lora, base)[0].options


def test_a_qlora_run_is_served_as_trained_not_from_its_merged_copy(tmp_path, embedded_model):
    cfg = qlora_study(tmp_path / "study")
    root = fake_training(cfg, embedded_model, merged=True)
    spec, adapter = resolve_student(cfg, student())
    assert adapter == str(root / "adapter") and spec.options["quantization"] == "nf4"
    # told to load in full precision, the merged copy is the student
    spec, adapter = resolve_student(cfg, student({"quantization": "none"}))
    assert adapter is None and spec.spec == f"hf:{root / 'model'}"


def test_the_run_that_made_the_adapter_decides(tmp_path, embedded_model):
    # a LoRA study evaluating an adapter folder that a QLoRA run left
    cfg = qlora_study(tmp_path / "study", mode="lora")
    other = qlora_study(tmp_path / "other")
    root = fake_training(other, embedded_model)
    spec, _ = resolve_student(cfg, student(adapter=str(root / "adapter")))
    assert spec.options["quantization"] == "nf4"
