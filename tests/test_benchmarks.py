"""The benchmarks' fairness: what makes a baseline comparable (no timings here)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.bench_training import _training_template
from benchmarks.common import row

ROOT = Path(__file__).resolve().parents[1]


def test_trl_baseline_puts_the_loss_on_the_same_tokens_as_ours():
    # The training benchmark compares final losses with TRL's: TRL's assistant-only mask
    # (from the patched chat template) must cover exactly the tokens our labels cover.
    from skillmix_utils.llm.models import load_tokenizer
    from skillmix_utils.stages.train.formatting import IGNORE, format_conversation

    tok = load_tokenizer("smollm2-135m-instruct")
    template = _training_template(tok)
    assert template is not None
    rows = [json.loads(x) for x in (ROOT / "tests/data/mix_small.jsonl").read_text().splitlines()
            if x.strip()]
    for r in rows:
        ours = format_conversation(r["messages"], tok, max_length=10**6)
        theirs = tok.apply_chat_template(r["messages"], chat_template=template, tokenize=True,
                                         return_dict=True, return_assistant_tokens_mask=True)
        assert theirs["input_ids"] == ours.input_ids
        ours_targets = [i for i, lab in enumerate(ours.labels) if lab != IGNORE]
        theirs_targets = [i for i, m in enumerate(theirs["assistant_masks"]) if m]
        assert theirs_targets == ours_targets


def test_ratio_direction():
    assert row("b", "w", 120.0, "ideal", 160.0, "req/s")["ratio"] == pytest.approx(0.75)
    assert row("b", "w", 5.0, "target", 10.0, "ms", higher_is_better=False)["ratio"] == 2.0
    assert row("b", "w", 1.0, "none", None, "x")["ratio"] is None
