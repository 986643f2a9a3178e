"""What the trainer chooses for a GPU, decided on the CPU: precision, attention, the optimiser,
DeepSpeed's dtypes and checkpointing under FSDP. (The CUDA runs themselves need a GPU.)"""
from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
import torch

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.stages.train.attention import ABSENT_WARNING, FLASH, choose_attention
from skillmix_utils.stages.train.precision import MIXED_PRECISION, precision_for, resolve_precision


# --- precision -------------------------------------------------------------------------------

@pytest.mark.parametrize("requested,bf16,chosen", [
    ("auto", True, "bf16"), ("auto", False, "fp16"), ("fp16", True, "fp16"),
    ("fp32", True, "fp32"), ("bf16", True, "bf16")])
def test_precision_on_a_gpu(requested, bf16, chosen):
    assert resolve_precision(requested, cuda=True, bf16_supported=bf16) == chosen


def test_bf16_on_a_gpu_without_it_and_half_precision_on_a_cpu_are_errors():
    with pytest.raises(SkillmixError, match="no bf16"):
        resolve_precision("bf16", cuda=True, bf16_supported=False)
    for requested in ("bf16", "fp16"):
        with pytest.raises(SkillmixError, match="CUDA"):
            resolve_precision(requested, cuda=False, bf16_supported=False)


def test_a_t4_gets_fp16_with_loss_scaling_and_the_cpu_stays_fp32(monkeypatch):
    assert precision_for("auto") == "fp32" and MIXED_PRECISION["fp32"] == "no"   # this CPU
    # A T4 (compute capability 7.5): torch's own default would count its emulated bf16.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                        lambda including_emulation=True: including_emulation)
    assert precision_for("auto") == "fp16" and MIXED_PRECISION["fp16"] == "fp16"


# --- attention -------------------------------------------------------------------------------

def _fake_flash_attn(monkeypatch, tmp_path, body: str) -> None:
    """An installed flash_attn package whose __init__ runs `body`."""
    pkg = tmp_path / "fake" / "flash_attn"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(body)
    monkeypatch.syspath_prepend(str(pkg.parent))
    monkeypatch.delitem(sys.modules, "flash_attn", raising=False)


def test_absent_flash_attn_falls_back_with_a_warning(monkeypatch):
    monkeypatch.setitem(sys.modules, "flash_attn", None)    # import raises ModuleNotFoundError
    assert choose_attention("auto", cuda=True) == ("sdpa", ABSENT_WARNING)
    assert choose_attention("sdpa", cuda=True) == ("sdpa", None)
    assert choose_attention("auto", cuda=False) == ("sdpa", None)
    with pytest.raises(SkillmixError, match="not installed"):
        choose_attention("flash", cuda=True)


@pytest.mark.parametrize("body,shown", [
    ("import flash_attn_2_cuda\n", "No module named 'flash_attn_2_cuda'"),
    ("raise ImportError('flash_attn_2_cuda.so: undefined symbol: _ZN3c105ErrorC2E')\n",
     "undefined symbol"),
    ("raise OSError('libcudart.so.12: cannot open shared object file')\n", "OSError: libcudart")])
def test_broken_flash_attn_is_an_error_naming_it_unless_sdpa(monkeypatch, tmp_path, body, shown):
    _fake_flash_attn(monkeypatch, tmp_path, body)
    with pytest.raises(SkillmixError, match="installed but broken") as err:
        choose_attention("auto", cuda=True)
    assert shown in str(err.value)
    assert choose_attention("sdpa", cuda=True) == ("sdpa", None)


def test_working_flash_attn_is_used(monkeypatch, tmp_path):
    _fake_flash_attn(monkeypatch, tmp_path, "__version__ = '2.8.3'\n")
    assert choose_attention("auto", cuda=True) == (FLASH, None)


def _fake_accelerator(*, device="cpu", fsdp_checkpointing=None):
    plugin = None if fsdp_checkpointing is None else SimpleNamespace(
        activation_checkpointing=fsdp_checkpointing, cpu_ram_efficient_loading=False)
    return SimpleNamespace(device=torch.device(device), local_process_index=0,
                           state=SimpleNamespace(fsdp_plugin=plugin),
                           distributed_type=SimpleNamespace(name="FSDP" if plugin else "NO"))


def test_the_trainer_stops_when_transformers_refuses_flash_attn(monkeypatch, tmp_path, make_study):
    """flash_attn imports, but transformers' own check of it fails (here: no distribution)."""
    from skillmix_utils.stages.train.trainer import _load_model

    _fake_flash_attn(monkeypatch, tmp_path, "__version__ = '2.8.3'\n")
    with pytest.raises(SkillmixError, match="installed but broken"):
        _load_model(make_study(), _fake_accelerator(device="cuda"))


# --- the optimiser ---------------------------------------------------------------------------

def test_adamw_is_fused_on_cuda_only(make_study):
    from skillmix_utils.stages.train.trainer import adamw_settings

    cfg = make_study(mode="full", learning_rate=2e-5)
    assert adamw_settings(cfg, cuda=True) == {"lr": 2e-5, "weight_decay": 0.0, "fused": True}
    assert adamw_settings(cfg, cuda=False) == {"lr": 2e-5, "weight_decay": 0.0}   # unchanged
    # torch accepts it on CUDA tensors only; here it is enough that the kwargs are valid.
    torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], **adamw_settings(cfg, cuda=True))


# --- checkpointing under FSDP ----------------------------------------------------------------

def test_hf_checkpointing_is_left_to_fsdp_when_fsdp_checkpoints(make_study):
    from skillmix_utils.stages.train.trainer import _load_model

    cfg = make_study(mode="full", gradient_checkpointing=True)
    alone = _load_model(cfg, _fake_accelerator())
    assert alone.is_gradient_checkpointing
    under_fsdp = _load_model(cfg, _fake_accelerator(fsdp_checkpointing=True))
    assert not under_fsdp.is_gradient_checkpointing    # fsdp.yaml's activation checkpointing
    assert _load_model(cfg, _fake_accelerator(fsdp_checkpointing=False)).is_gradient_checkpointing


# --- DeepSpeed -------------------------------------------------------------------------------

def test_deepspeed_config_accumulates_and_reduces_gradients_in_fp32(make_study, monkeypatch):
    """The config accelerate builds from deepspeed_zero3.yaml on 4 GPUs in bf16, with the
    trainer's settings, read back by DeepSpeed's own parser."""
    pytest.importorskip("deepspeed")
    from accelerate.utils import DeepSpeedPlugin
    from deepspeed.runtime.config import DeepSpeedConfig

    from skillmix_utils.stages.train.deepspeed_setup import deepspeed_settings
    from skillmix_utils.stages.train.launch import accelerate_env

    for key, value in accelerate_env("deepspeed", 4, cuda=True).items():
        monkeypatch.setenv(key, value)
    plugin = DeepSpeedPlugin()
    plugin.set_mixed_precision("bf16")
    cfg = make_study(mode="full", batch_size=16, per_device_batch_size=4, max_grad_norm=0.5)
    ds = deepspeed_settings(plugin.deepspeed_config, cfg, accum=4)
    assert ds["bf16"]["enabled"] is True and ds["zero_optimization"]["stage"] == 3
    assert ds["data_types"]["grad_accum_dtype"] == "fp32"
    assert ds["communication_data_type"] == "fp32"
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"],
            ds["gradient_clipping"]) == (4, 4, 0.5)
    parsed = DeepSpeedConfig(ds)     # one process here: 16 = 4 per device x 4 accumulation x 1
    assert parsed.grad_accum_dtype == "fp32"
    assert parsed.communication_data_type == torch.float32
    assert parsed.bfloat16_config.enabled
