"""Packing does not leak: a packed row's loss equals its examples' losses one at a time."""
from __future__ import annotations

import pytest
import torch

from skillmix_utils.stages.train.formatting import format_rows
from skillmix_utils.stages.train.packing import collate, summed_loss
from skillmix_utils.stages.train.pretrain import builtin_corpus, pretrain_examples


def test_collate_shapes_and_real_fraction():
    from skillmix_utils.stages.train.formatting import Example

    exs = [Example([1, 2, 3], [-100, 2, 3]), Example([4, 5], [-100, 5])]
    packed = collate(exs, packed=True)
    assert packed.input_ids.shape == (1, 5) and packed.n_real == packed.n_total == 5
    assert packed.position_ids.tolist() == [[0, 1, 2, 0, 1]]
    assert packed.attention_mask.shape == (1, 1, 5, 5)
    padded = collate(exs, packed=False, pad_to=8)
    assert padded.input_ids.shape == (2, 8) and padded.n_real == 5 and padded.n_total == 16
    assert collate(exs, packed=True, flash=True).attention_mask is None


def test_builtin_corpus_is_prose():
    docs = builtin_corpus()
    text = " ".join(docs)
    assert len(docs) > 50 and len(text) > 100_000
    assert ">>>" not in text and " the " in text


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_packed_loss_equals_one_at_a_time(embedded_model, impl, rows):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(embedded_model)
    model = AutoModelForCausalLM.from_pretrained(embedded_model, attn_implementation=impl).eval()
    exs, _ = format_rows(rows[:1], tok, max_length=1024)
    exs += pretrain_examples(builtin_corpus(), tok, n_tokens=40, chunk_len=40)  # loss on all
    exs += format_rows(rows[1:2], tok, fmt="plain", max_length=1024)[0]
    dtype = torch.bool if impl == "sdpa" else torch.float32
    with torch.no_grad():
        one_by_one = sum(summed_loss(model(**b.model_inputs()).logits, b.labels).item()
                         for b in (collate([e]) for e in exs))
        packed = collate(exs, packed=True, mask_dtype=dtype)
        together = summed_loss(model(**packed.model_inputs()).logits, packed.labels).item()
        # Without the block-diagonal mask the examples see each other: the loss differs.
        packed.attention_mask = None
        leaky = summed_loss(model(**packed.model_inputs()).logits, packed.labels).item()
    assert packed.n_labels == sum(e.n_labels for e in exs)
    assert together == pytest.approx(one_by_one, rel=1e-4)
    assert abs(leaky - one_by_one) > 1e-2 * one_by_one


@pytest.mark.parametrize("packed", [True, False])
def test_answer_loss_equals_the_full_heads_loss_and_gradient(packed):
    """The LM head run only at labelled positions gives the loss and gradients of the full head."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from skillmix_utils.stages.train.formatting import Example
    from skillmix_utils.stages.train.packing import answer_loss

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4,
                                         num_key_value_heads=2, max_position_embeddings=64))
    exs = [Example(list(range(3, 15)), [-100] * 8 + list(range(11, 15))),
           Example(list(range(20, 26)), [-100, -100, 22, 23, -100, 25]),
           Example(list(range(40, 49)), [-100] * 9)]                 # a prompt with no answer
    batch = collate(exs, packed=packed)
    full = summed_loss(model(**batch.model_inputs()).logits, batch.labels)
    full.backward()
    want = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    kept = answer_loss(model, batch)
    kept.backward()
    assert kept.item() == pytest.approx(full.item(), rel=1e-5)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, want[n], rtol=1e-4, atol=1e-6, msg=n)
    # A batch with no answer at all still gives a (zero) loss with a graph.
    empty = answer_loss(model, collate([exs[2]], packed=packed))
    assert empty.item() == 0.0 and empty.requires_grad
