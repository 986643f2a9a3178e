"""Which attention a training run uses: flash-attn 2 on CUDA when it works, else sdpa.

    impl, warning = choose_attention("auto", cuda=True)   # ("flash_attention_2", None)

Without flash-attn a packed micro-batch needs sdpa with a dense block-diagonal L x L mask:
+12% step FLOPs at 4k packed tokens, +25% at 8k, and the masks' memory. So an absent flash-attn
is a fallback the user is told about (a WARN line in the log and in train_summary.json), and a
flash-attn that is installed but fails to import (an ABI mismatch with torch, a missing CUDA
library) is an error naming what failed: silently training slower is not what was asked for.
`attention: sdpa` in the config opts out of flash-attn, broken or not.
"""
from __future__ import annotations

import importlib

from skillmix_utils.core.errors import SkillmixError

FLASH = "flash_attention_2"
ABSENT_WARNING = ("flash-attn is not installed: attention falls back to sdpa with a dense "
                  "L x L mask per packed row (+12% step FLOPs at 4k tokens, +25% at 8k); "
                  "pip install flash-attn, or set train.attention: sdpa to silence this")


def flash_attn_status() -> tuple[str, str]:
    """("ok", version), ("absent", why) or ("broken", the exception) for the flash_attn package."""
    try:
        module = importlib.import_module("flash_attn")
    except ModuleNotFoundError as exc:
        if exc.name == "flash_attn":
            return "absent", str(exc)
        return "broken", f"{type(exc).__name__}: {exc}"   # a module flash_attn itself imports
    except Exception as exc:   # noqa: BLE001 - any failure of an installed package is "broken"
        return "broken", f"{type(exc).__name__}: {exc}"
    return "ok", str(getattr(module, "__version__", "unknown version"))


def broken_error(detail: str) -> SkillmixError:
    """The error for a flash-attn that is installed but does not work."""
    return SkillmixError(f"flash-attn is installed but broken ({detail}); reinstall it for this "
                         "torch and CUDA, or set train.attention: sdpa", field="train.attention")


def choose_attention(requested: str, *, cuda: bool) -> tuple[str, str | None]:
    """The attention implementation to train with and a warning for the log, if any.

    `requested` is train.attention: auto (flash-attn on CUDA when installed), flash (flash-attn
    or an error) or sdpa. A CPU always uses sdpa (flash-attn is CUDA only).
    """
    if requested == "sdpa":
        return "sdpa", None
    if not cuda:
        if requested == "flash":
            raise SkillmixError("attention flash needs a CUDA GPU", field="train.attention")
        return "sdpa", None
    status, detail = flash_attn_status()
    if status == "ok":
        return FLASH, None
    if status == "absent" and requested == "auto":
        return "sdpa", ABSENT_WARNING
    if status == "absent":
        raise SkillmixError(f"attention flash: flash-attn is not installed ({detail})",
                            field="train.attention")
    raise broken_error(detail)
