"""A vllm: student is compared with transformers + peft before it writes anything."""
from __future__ import annotations

import pytest

from skillmix_utils.core.catalog import load_catalog
from skillmix_utils.core.config import ModelSpec, StudentSpec
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.sampling import sample_combinations
from skillmix_utils.stages import evaluate
from skillmix_utils.stages.generate import Pending


class Say:
    """The parts of a StageRun the check uses: messages, and the stage's backends."""

    def __init__(self):
        self.lines = []

    def say(self, line):
        self.lines.append(line)

    def backend(self, spec, adapter=None):
        return ("stage backend", spec.spec, adapter)


def todo(n=4):
    combos = sample_combinations(load_catalog(), 2, n, seed=0)
    return [Pending(f"id{i}", c, 0) for i, c in enumerate(combos)]


def student(spec="vllm:smollm2-135m-instruct", **kw):
    return StudentSpec(name="tuned", model=ModelSpec(spec=spec), **kw)


def fake_parity(match, seen):
    def parity_check(base, adapter, prompts, max_tokens=32, engine_options=None,
                     max_lora_rank=None, backend=None):
        seen.append((base, adapter, prompts, backend))
        return {"match": match, "pairs": [], "dtype": "bfloat16",
                "diverged": ["step 3: token 5 vs 9, not among the best of the other"]}
    return parity_check


def test_disagreement_stops_the_run(monkeypatch):
    seen = []
    monkeypatch.setattr("skillmix_utils.stages.evaluate.parity_check", fake_parity(1 / 3, seen))
    s = student()
    with pytest.raises(SkillmixError, match="disagree.*first: step 3") as info:
        evaluate.check_vllm_parity(s, s.model, "/ad", todo(), load_catalog(), Say())
    assert info.value.field == "evaluation.students[tuned].parity_min_match"
    base, adapter, prompts, backend = seen[0]
    assert (base, adapter, len(prompts)) == ("smollm2-135m-instruct", "/ad", 3)
    # the check runs on the stage's backend, whose engine then writes the texts
    assert backend == ("stage backend", "vllm:smollm2-135m-instruct", "/ad")
    assert prompts[0].startswith("Greetings!")


def test_agreement_passes_and_other_students_are_not_checked(monkeypatch):
    seen = []
    monkeypatch.setattr("skillmix_utils.stages.evaluate.parity_check", fake_parity(1.0, seen))
    run = Say()
    s = student(parity_prompts=2)
    evaluate.check_vllm_parity(s, s.model, None, todo(), load_catalog(), run)
    assert len(seen[0][2]) == 2 and "parity 100%" in run.lines[0]
    h = student("hf:smollm2-135m-instruct")
    evaluate.check_vllm_parity(h, h.model, None, todo(), load_catalog(), run)
    off = student(parity_prompts=0)
    evaluate.check_vllm_parity(off, off.model, None, todo(), load_catalog(), run)
    assert len(seen) == 1


def test_one_disagreeing_prompt_stops_the_run_by_default(monkeypatch):
    # made the same way every prompt agrees (rounding is allowed for), so the default asks all
    monkeypatch.setattr("skillmix_utils.stages.evaluate.parity_check", fake_parity(2 / 3, []))
    s = student()
    with pytest.raises(SkillmixError, match="need 100% agreement"):
        evaluate.check_vllm_parity(s, s.model, "/ad", todo(), load_catalog(), Say())


def test_a_vllm_student_reserves_the_context_its_texts_need():
    from skillmix_utils.stages.generate import Writer

    items = todo()
    s = student(spec="vllm:smollm2-135m-instruct")
    spec = s.model.model_copy(update={"max_tokens": 512})
    writer = Writer(spec, load_catalog())
    served = evaluate.serving_spec(spec, writer, items)
    # both turns and two 512-token replies: far from the model's 8k window
    assert 1024 < served.options["max_model_len"] <= 2048
    assert served.options["max_model_len"] % 256 == 0
    # the texts are the same texts: no record is rewritten for it
    assert Writer(served, load_catalog()).identity(items[0]) == writer.identity(items[0])
    told = spec.model_copy(update={"options": {"engine_options": {"max_model_len": 4096}}})
    assert evaluate.serving_spec(told, writer, items) == told
    hf = student("hf:smollm2-135m-instruct").model
    assert evaluate.serving_spec(hf, writer, items) == hf
