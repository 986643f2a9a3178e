"""QLoRA's gradients through the 4-bit layers equal those of the same model on a dequantised fp32
copy of the same weights, also after an evaluation pass such as the trainer's probe.

On a CPU with AVX512-BF16 bitsandbytes 0.50 repacks a 4-bit layer for inference at its first
eval-mode pass and then sends training through a kernel without a backward (train/nf4.py); on
other CPUs the default path is already right and this test passes either way.
"""
from __future__ import annotations

import copy

import pytest
import torch

pytestmark = pytest.mark.slow

# Both sides dequantise the same NF4 weights to fp32 and multiply in fp32, so they differ only
# by rounding: 2**-24 per operation, grown through 30 layers' backward and other summation
# orders, stays far below 1e-4 (measured: exactly 0 on an AMD EPYC with AVX512-BF16). Without
# train/nf4.py that machine's worst LoRA gradient was off by 134% of its norm and the loss by
# 2e-4 (the repacked path's bf16 forward).
RTOL = 1e-4


def _dequantised_copy(model):
    """`model` with every bitsandbytes Linear4bit replaced by a frozen fp32 nn.Linear holding
    `dequantize_4bit` of its weights (LoRA, norms, embeddings and hooks are copied as they are)."""
    import bitsandbytes as bnb
    from bitsandbytes.functional import dequantize_4bit

    ref = copy.deepcopy(model)
    n = 0
    for parent in list(ref.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, bnb.nn.Linear4bit):
                w = dequantize_4bit(child.weight.data, child.weight.quant_state).float()
                linear = torch.nn.Linear(child.in_features, child.out_features,
                                         bias=child.bias is not None)
                linear.weight = torch.nn.Parameter(w, requires_grad=False)
                if child.bias is not None:
                    linear.bias = torch.nn.Parameter(child.bias.data.float(), requires_grad=False)
                setattr(parent, name, linear)
                n += 1
    assert n > 0
    return ref


def _gradients(model, batch) -> tuple[float, dict]:
    """Mean answer-token loss and its gradients: of every trainable (LoRA) parameter, and of the
    input embeddings (which reach them only through every 4-bit layer above)."""
    from skillmix_utils.stages.train.packing import answer_loss

    model.train()
    model.zero_grad()
    seen = {}

    def keep(module, inputs, output):
        # The embeddings are frozen; asking for this gradient also sends the first layer's
        # input through the 4-bit matmul's backward.
        output.requires_grad_(True)
        seen["x"] = output

    hook = model.get_input_embeddings().register_forward_hook(keep)
    loss = answer_loss(model, batch) / batch.n_labels
    loss.backward()
    hook.remove()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    grads["input embeddings"] = seen["x"].grad
    return loss.item(), grads


def test_qlora_gradients_equal_the_dequantised_reference(make_study, rows):
    from skillmix_utils.llm.models import load_tokenizer
    from skillmix_utils.stages.train.formatting import format_rows
    from skillmix_utils.stages.train.packing import collate
    from skillmix_utils.stages.train.trainer import _load_model, make_accelerator, mean_loss

    cfg = make_study(mode="qlora", steps=1, batch_size=1, per_device_batch_size=1)
    model = _load_model(cfg, make_accelerator(cfg, 1))   # the trainer's own QLoRA model
    # An adapter part-way through training: lora_B is zero at the start, which would leave
    # every lora_A gradient zero on both sides.
    gen = torch.Generator().manual_seed(0)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data = 0.01 * torch.randn(p.shape, generator=gen)
    reference = _dequantised_copy(model)   # before any forward pass can repack the weights

    tok = load_tokenizer(cfg.train.base_model)
    examples, _ = format_rows(rows[:1], tok, max_length=512)
    mean_loss(model, examples, pad_id=tok.pad_token_id)   # the probe's evaluation pass
    batch = collate(examples, packed=True, pad_id=tok.pad_token_id, flash=False)

    loss, grads = _gradients(model, batch)
    loss_ref, grads_ref = _gradients(reference, batch)
    assert grads.keys() == grads_ref.keys() and len(grads) > 100
    errors = {k: ((grads[k] - grads_ref[k]).norm() / grads_ref[k].norm()).item() for k in grads}
    worst = max(errors, key=errors.get)
    assert errors[worst] < RTOL, f"{worst}: gradient off by {errors[worst]:.1%} of its norm"
    assert loss == pytest.approx(loss_ref, rel=RTOL)
