"""The loss mask: only the answers, each with its end-of-turn token, carry labels."""
from __future__ import annotations

import pytest

from skillmix_utils.stages.train.formatting import IGNORE, format_conversation, format_rows, mix_name

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tok(embedded_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_model)


def test_labels_token_by_token_against_chat_template(tok, rows):
    msgs = rows[4]["messages"]
    ex = format_conversation(msgs, tok, fmt="chat_template", max_length=4096)
    # The ids are exactly the chat template's.
    assert ex.input_ids == tok.apply_chat_template(msgs, tokenize=True)["input_ids"]
    # Independent walk over the template's tokens: inside "<|im_start|>assistant\n ... <|im_end|>"
    # every token up to and including <|im_end|> is a target; everything else is not.
    start, end = tok.convert_tokens_to_ids("<|im_start|>"), tok.convert_tokens_to_ids("<|im_end|>")
    header = tok("assistant\n", add_special_tokens=False)["input_ids"]
    expected, i, ids = [IGNORE] * len(ex.input_ids), 0, ex.input_ids
    while i < len(ids):
        if ids[i] == start and ids[i + 1: i + 1 + len(header)] == header:
            j = i + 1 + len(header)
            while ids[j] != end:
                expected[j] = ids[j]
                j += 1
            expected[j] = ids[j]  # the end-of-turn token is learned: the model must stop
            i = j
        i += 1
    assert ex.labels == expected
    # And the labelled spans decode to the two answers, each closed by <|im_end|>.
    spans, cur = [], []
    for t, lab in zip(ids, ex.labels):
        if lab != IGNORE:
            cur.append(t)
        elif cur:
            spans.append(cur)
            cur = []
    answers = [m["content"] for m in msgs if m["role"] == "assistant"]
    assert [tok.decode(s) for s in spans] == [a + "<|im_end|>" for a in answers]
    assert ex.labels[0] == IGNORE and tok.pad_token_id == end  # pad == eos, yet eos is learned


def test_plain_format_labels_answers_and_eos(tok, rows):
    msgs = rows[0]["messages"]
    ex = format_conversation(msgs, tok, fmt="plain", max_length=4096)
    labelled = [t for t, lab in zip(ex.input_ids, ex.labels) if lab != IGNORE]
    answers = [m["content"] for m in msgs if m["role"] == "assistant"]
    assert tok.decode(labelled) == "".join(a + tok.eos_token for a in answers)
    assert msgs[0]["content"] in tok.decode(ex.input_ids)


def test_truncate_on_turn_boundary_or_drop(tok, rows):
    rows = rows
    full = format_conversation(rows[0]["messages"], tok, max_length=4096)
    first_end = full.labels.index(tok.convert_tokens_to_ids("<|im_end|>"),
                                  next(i for i, lab in enumerate(full.labels) if lab != IGNORE))
    # Room for turn 1 but not turn 2: cut right after answer 1's <|im_end|>.
    exs, stats = format_rows(rows[:1], tok, max_length=len(full) - 5)
    assert stats.truncated == 1 and stats.dropped == 0
    assert exs[0].input_ids == full.input_ids[: first_end + 1]
    assert exs[0].input_ids[-1] == tok.convert_tokens_to_ids("<|im_end|>")
    # Not even answer 1 fits: dropped and counted.
    exs, stats = format_rows(rows[:3], tok, max_length=first_end)
    assert exs == [] and stats.dropped == 3 and stats.as_dict()["kept"] == 0


def test_mix_name():
    assert mix_name([1, 2, 3]) == "k1-2-3" and mix_name([1], "sub") == "sub"


def test_mix_and_corpus_sources_on_disk(tmp_path, rows):
    from datasets import Dataset

    from skillmix_utils.core.errors import SkillmixError
    from skillmix_utils.stages.train.formatting import find_mix, load_rows
    from skillmix_utils.stages.train.pretrain import load_corpus

    mixes = tmp_path / "data" / "mixes"
    Dataset.from_list(rows).save_to_disk(str(mixes / "k1-2"))  # the `datasets` export
    found = find_mix(tmp_path, [1, 2])
    assert found.is_dir() and load_rows(found)[3]["messages"] == rows[3]["messages"]
    with pytest.raises(SkillmixError, match="generate-data"):
        find_mix(tmp_path, [1, 2, 3])
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "a.txt").write_text("It was a bright cold day in April.")
    assert load_corpus(str(tmp_path / "txt")) == ["It was a bright cold day in April."]
    Dataset.from_dict({"text": ["One.", "Two."]}).save_to_disk(str(tmp_path / "corpus"))
    assert load_corpus(str(tmp_path / "corpus")) == ["One.", "Two."]
    assert load_corpus(None) == []
