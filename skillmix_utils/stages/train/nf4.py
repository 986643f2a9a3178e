"""NF4 (bitsandbytes 4-bit) layers that stay differentiable on the CPU.

bitsandbytes 0.50's `Linear4bit.forward`, the first time it runs in eval mode on a CPU input that
needs no gradient, on a CPU with AVX512-BF16 (AMD Zen 4, Intel Sapphire Rapids and later),
repacks the layer's weights in place into an inference-only layout. From then on every call,
training included, takes `gemv_4bit`: bf16 compute, and no autograd kernel, so no gradient flows
back through the frozen 4-bit weight (torch only warns "may lead to silently incorrect
behavior"). The trainer evaluates in eval mode (the probe, the held-out loss) before and between
steps, so on such a CPU QLoRA trained with wrong gradients: on the embedded model the LoRA
gradients after one evaluation pass were off by 99% of their norm (cosine 0.12 with the
reference), and two steps of tests/stages/train/test_modes.py lowered the loss by 0.03 instead of
0.47. The repacking is lossy too: it keeps the block scales in bf16, and `state_dict()`
quantises them again.

Without the repacking the layer dequantises its weights to the compute dtype and calls
`F.linear`, forward and backward (`MatMul4Bit`), on every CPU, exactly the computation on a
dequantised copy of the weights (tests/stages/train/test_nf4_gradients.py). CUDA inputs never take the
repacking branch, so GPUs are unaffected.
"""
from __future__ import annotations


def keep_differentiable(model) -> int:
    """Switch off bitsandbytes' CPU inference repacking on every 4-bit layer of `model` (call it
    before the first forward pass). Returns the number of 4-bit layers."""
    import bitsandbytes as bnb

    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    for layer in layers:
        if getattr(layer.weight.quant_state, "packing_format_for_cpu", False):
            # Unpacking is lossy (see above): such a model is not the one that was loaded.
            raise RuntimeError("a 4-bit layer was already repacked for CPU inference; "
                               "call keep_differentiable before the first forward pass")
        layer.support_avx512bf16_for_cpu = False   # the flag Linear4bit.forward checks
    return len(layers)
