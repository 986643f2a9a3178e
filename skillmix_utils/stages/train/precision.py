"""The precision a training run computes in: bf16, fp16 with loss scaling, or fp32.

    precision_for("auto")          # "bf16" on an A100 / H100, "fp16" on a T4 / V100, "fp32" on a CPU

bf16 needs compute capability 8.0 (Ampere) or newer: a T4 or V100 has no bf16 units (bf16 there
is emulated, or `Accelerator(mixed_precision="bf16")` refuses it), so `auto` falls back to fp16, where accelerate scales the loss
with a GradScaler (fp16's narrow range would otherwise flush small gradients to zero). The
CPU computes in fp32, as the CPU tests compare exact numbers with it. The chosen precision is
recorded as `precision` in train_summary.json.
"""
from __future__ import annotations

from skillmix_utils.core.errors import SkillmixError

# accelerate's mixed_precision names, and the dtype of weights that compute in that precision.
MIXED_PRECISION = {"bf16": "bf16", "fp16": "fp16", "fp32": "no"}
DTYPE_NAME = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def resolve_precision(requested: str, *, cuda: bool, bf16_supported: bool) -> str:
    """The precision to compute in ("bf16", "fp16" or "fp32") for `train.precision`.

    >>> resolve_precision("auto", cuda=True, bf16_supported=False)
    'fp16'
    >>> resolve_precision("auto", cuda=False, bf16_supported=False)
    'fp32'
    """
    if not cuda:
        if requested in ("auto", "fp32"):
            return "fp32"
        raise SkillmixError(f"precision {requested} needs a CUDA GPU; a CPU trains in fp32 "
                            "(precision auto or fp32)", field="train.precision")
    if requested == "auto":
        return "bf16" if bf16_supported else "fp16"
    if requested == "bf16" and not bf16_supported:
        raise SkillmixError("this GPU has no bf16 (it needs compute capability 8.0 or newer): "
                            "use precision fp16 (loss scaling) or auto", field="train.precision")
    return requested


def precision_for(requested: str) -> str:
    """resolve_precision for this machine's first visible device."""
    import torch  # heavy

    cuda = torch.cuda.is_available()
    # Native bf16 only: torch's default also counts a T4's emulated bf16, which is slow and
    # unsupported by the fused kernels training relies on.
    native = cuda and torch.cuda.is_bf16_supported(including_emulation=False)
    return resolve_precision(requested, cuda=cuda, bf16_supported=native)
