"""Micro-batches where (nearly) every token is real, without one example attending to another.

    batch = collate(examples, packed=True, pad_id=tok.pad_token_id, flash=False)
    logits = model(**batch.model_inputs()).logits

Short skill-mix texts padded to 1,024 tokens waste most of the compute. Packed, a micro-batch is
one row: its examples concatenated, `position_ids` restarting at 0 for each example. What keeps
the examples apart depends on the attention kernel:

- flash-attention 2 (GPU): `position_ids` alone; transformers turns the restarts into
  `cu_seqlens` for the variable-length kernel. No mask, no padding.
- sdpa / eager (CPU, or a GPU without flash-attn): restarted positions alone LEAK (measured:
  summed loss 177.38 packed vs 186.03 one at a time, see shared/FACTS.md), so an explicit 4-D
  block-diagonal causal mask goes with them. It must be additive float (0 / dtype-min): eager
  attention misreads a boolean 4-D mask (measured max logit error 37), sdpa takes either.

Unpacked (`packed=False`) rows are padded to the longest row (the trainer's unpacked mode), or
to `pad_to` when a caller wants a fixed width. Every example's first label is -100
(nothing precedes it), so a packed row's loss equals the sum of its examples' losses.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from skillmix_utils.stages.train.formatting import IGNORE, Example


@dataclass
class Batch:
    input_ids: torch.Tensor
    labels: torch.Tensor
    attention_mask: torch.Tensor | None
    position_ids: torch.Tensor | None
    n_real: int          # tokens that belong to an example
    n_total: int         # tokens the model computes on (real + padding)
    n_labels: int        # tokens that carry a loss (after the shift)

    def model_inputs(self) -> dict:
        d = {"input_ids": self.input_ids}
        if self.attention_mask is not None:
            d["attention_mask"] = self.attention_mask
        if self.position_ids is not None:
            d["position_ids"] = self.position_ids
        return d

    def to(self, device) -> "Batch":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Batch(move(self.input_ids), move(self.labels), move(self.attention_mask),
                     move(self.position_ids), self.n_real, self.n_total, self.n_labels)


def block_causal_mask(lengths: list[int], dtype=torch.float32) -> torch.Tensor:
    """1 x 1 x L x L mask: token i sees token j iff same example and j <= i (additive float,
    or boolean when dtype is torch.bool).

    >>> m = block_causal_mask([2, 1])
    >>> (m[0, 0] == 0).int().tolist()
    [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    """
    seg = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    n = int(seg.numel())
    allowed = torch.tril(torch.ones(n, n, dtype=torch.bool)) & (seg[:, None] == seg[None, :])
    if dtype == torch.bool:  # sdpa takes a boolean mask (True = may attend)
        return allowed[None, None]
    mask = torch.zeros(n, n, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    return mask[None, None]


def position_ids_for(lengths: list[int]) -> torch.Tensor:
    """Positions restarting at 0 for each packed example.

    >>> position_ids_for([3, 2]).tolist()
    [[0, 1, 2, 0, 1]]
    """
    return torch.cat([torch.arange(n) for n in lengths])[None]


def collate(examples: list[Example], *, packed: bool = True, pad_id: int = 0,
            flash: bool = False, pad_to: int | None = None, mask_dtype=torch.float32) -> Batch:
    """Examples -> one micro-batch (one packed row, or one padded row per example)."""
    lengths = [len(e) for e in examples]
    n_labels = sum(e.n_labels for e in examples)
    if packed:
        ids = torch.tensor([t for e in examples for t in e.input_ids])[None]
        labels = torch.tensor([t for e in examples for t in e.labels])[None]
        pos = position_ids_for(lengths)
        mask = None if flash else block_causal_mask(lengths, mask_dtype)
        return Batch(ids, labels, mask, pos, sum(lengths), sum(lengths), n_labels)
    width = max(pad_to or 0, max(lengths))
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    attn = torch.zeros((len(examples), width), dtype=torch.long)
    for r, e in enumerate(examples):
        # Right padding; the 2-D mask hides it, and pad labels are -100 (never pad == eos labels).
        ids[r, : len(e)] = torch.tensor(e.input_ids)
        labels[r, : len(e)] = torch.tensor(e.labels)
        attn[r, : len(e)] = 1
    return Batch(ids, labels, attn, None, sum(lengths), ids.numel(), n_labels)


def summed_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of next-token cross-entropy over labelled positions (the caller normalises)."""
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE,
        reduction="sum")


def answer_loss(model, batch: Batch) -> torch.Tensor:
    """`summed_loss` of `model` on `batch`, running the LM head only where a row predicts a
    labelled token.

    The head's logits (positions x vocabulary, 32k to 150k wide) are the largest activation of
    a step, and most positions are prompt tokens whose loss is masked: asking the model for the
    logits of the labelled positions only (`logits_to_keep`, a 1-D index tensor) gives the same
    sum for a fraction of the head's time and memory.
    """
    keep = (batch.labels[:, 1:] != IGNORE).any(0).nonzero().flatten()
    if keep.numel() == 0:       # nothing labelled: the full pass keeps every rank's graph alike
        return summed_loss(model(**batch.model_inputs()).logits, batch.labels)
    logits = model(**batch.model_inputs(), logits_to_keep=keep).logits
    return torch.nn.functional.cross_entropy(
        logits.flatten(0, 1).float(), batch.labels[:, keep + 1].flatten(), ignore_index=IGNORE,
        reduction="sum")
