"""Both model stages end to end through the command line, offline, on the CPU: generate-data,
evaluate (a base student, then one with a LoRA adapter, then the adapter retrained in place),
grade and metrics. The llm cache is private to the test, so every text is really generated.

The model is the tests' tiny random one (conftest.tiny_model: the embedded model's architecture,
tokenizer and chat template), for teacher, judge and students alike: what is checked here is
the stages' bookkeeping, and the same test on the 135M model took 213 s where this takes 37 s
(measured alone on 2 cores). The embedded model's own texts and verdicts are exercised by
tests/notebooks/test_e2e_notebooks.py and tests/llm/test_hf_backend.py."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from skillmix_utils import cli
from skillmix_utils.core.records import RecordStore

pytestmark = pytest.mark.slow


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("SKILLMIX_CACHE", str(cache))
    return cache


@pytest.fixture
def config(tiny_model, repo_root, tmp_path) -> str:
    """tests/data/stages_tiny.yaml with every model (teacher, judge, student) the tiny one."""
    text = (repo_root / "tests" / "data" / "stages_tiny.yaml").read_text()
    assert text.count("hf:smollm2-135m-instruct") == 4
    path = tmp_path / "stages_tiny.yaml"
    path.write_text(text.replace("hf:smollm2-135m-instruct", f"hf:{tiny_model}"))
    return str(path)


@pytest.fixture
def one_thread():
    """One torch thread: on a shared 2-core machine two threads per process oversubscribe the
    cores, and generation ran 3 to 8 times slower than with one (measured)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _lora_adapter(base, folder, trained: bool = False):
    """A LoRA adapter saved to `folder`: freshly initialised (B = 0), which loads and runs like a
    trained one, or with random B (`trained`), which changes what the model writes."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                            init_lora_weights=not trained, task_type="CAUSAL_LM"))
    peft.save_pretrained(folder)
    return folder


def test_both_stages_through_the_cli(private_cache, one_thread, tiny_model, config, tmp_path,
                                     capsys):
    out = tmp_path / "out"
    base = ["--set", f"output_dir={out}"]

    assert cli.main(["generate-data", config, *base]) == 0
    printed = capsys.readouterr().out
    assert "data_card:" in printed and "mix:k1-2-3:" in printed
    recs = RecordStore(out / "data" / "records.jsonl").records()
    assert len(recs) == 5 and all(r.status == "ok" for r in recs)
    assert all(len(r.conversation) == 4 and r.answer is not None for r in recs)
    assert all(r.gradings[0].method == "yes_no_logprob" and r.kept is not None for r in recs)
    card = json.loads((out / "data" / "data_card.json").read_text())
    assert card["total"]["graded"] == 5 and card["contamination_check"]["passed"]
    assert card["graders"][0]["method"] == "yes_no_logprob"
    for name in ("k1", "k1-2", "k1-2-3", "sub3"):
        assert (out / "data" / "mixes" / f"{name}.jsonl").exists()
        assert (out / "data" / "mixes" / name / "dataset_info.json").exists()
    kept = sum(1 for r in recs if r.kept)
    assert len((out / "data" / "mixes" / "k1-2-3.jsonl").read_text().splitlines()) == kept

    assert cli.main(["evaluate", config, *base]) == 0
    assert "metrics:" in capsys.readouterr().out
    # A second student, base + LoRA adapter, on the held-out setting only: the base student's
    # held-out texts exist already, so only the new student's are written; the base student's
    # train-setting texts, which this config does not ask for, are moved aside
    # (records.superseded.jsonl) and never reach a table.
    adapter = _lora_adapter(tiny_model, tmp_path / "adapter")
    students = (f"[{{name: base, model: {{spec: 'hf:{tiny_model}', max_tokens: 40, seed: 0}}}},"
                f" {{name: lora, model: {{spec: 'hf:{tiny_model}', max_tokens: 40, seed: 0}},"
                f" adapter: '{adapter}'}}]")
    lora = [*base, "--set", f"evaluation.students={students}",
            "--set", "evaluation.settings=[held_out]"]
    assert cli.main(["evaluate", config, *lora]) == 0
    ev = RecordStore(out / "eval" / "records.jsonl").records()
    assert len(ev) == 2 + 2 and all(r.status == "ok" for r in ev)
    aside = RecordStore(out / "eval" / "records.superseded.jsonl").records()
    assert {(r.student, r.combination.setting) for r in aside} == {("base", "train")}
    assert {r.adapter for r in ev if r.student == "lora"} == {str(adapter)}
    assert all(len(r.gradings) == 1 and r.gradings[0].method == "yes_no_logprob" for r in ev)
    rounds = {}
    for r in ev:
        rounds.setdefault((r.student, r.combination.setting, r.combination.index), []).append(r.answer)
    assert any(len(set(a)) > 1 for a in rounds.values())     # generation rounds are not copies

    m = pd.read_csv(out / "eval" / "tables" / "metrics.csv")
    assert len(m) == 2 and set(m.grader_method) == {"yes_no_logprob"}
    assert set(zip(m.student, m.setting)) == {("base", "held_out"), ("lora", "held_out")}
    assert (m.n_train_overlap == 0).all()
    assert m.ratio_full_marks.between(0, 1).all() and (m.n_combinations == 1).all()
    for name in ("per_category.csv", "agreement.csv", "parse_failures.csv"):
        assert (out / "eval" / "tables" / name).exists()

    before = (out / "eval" / "tables" / "metrics.csv").read_text()
    assert cli.main(["grade", config, *lora, "--records", str(out / "eval" / "records.jsonl")]) == 0
    assert cli.main(["metrics", config, *lora]) == 0
    assert (out / "eval" / "tables" / "metrics.csv").read_text() == before

    # Retraining the adapter in place: the lora student's texts are rewritten by the new
    # weights (and regraded); the base student's are left alone.
    old = {r.id: r for r in RecordStore(out / "eval" / "records.jsonl").records()}
    shutil.rmtree(adapter)
    _lora_adapter(tiny_model, adapter, trained=True)
    assert cli.main(["evaluate", config, *lora]) == 0
    assert "were made otherwise" in capsys.readouterr().err
    new = {r.id: r for r in RecordStore(out / "eval" / "records.jsonl").records()}
    assert set(new) == set(old)
    for rid, rec in new.items():
        if rec.student == "lora":
            assert rec.weights and rec.weights != old[rid].weights and len(rec.gradings) == 1
        else:
            assert rec == old[rid]
