"""What makes a model write what it writes, besides the request: "made the same way".

`model_identity(spec, adapter=, base_url=, options=)` is the one description of a model as it is
loaded or reached. The record identity of a text or grading (`identity.py`) and every backend's
response-cache key (`llm.Backend.key`) are both built from it, so a change that makes a model
write otherwise gives a new identity *and* a new cache key, never one without the other:

- a local model (`hf:`, `vllm:`): a fingerprint of its weights when the spec names a folder (a
  checkpoint retrained in place is new), the adapter's content hash, and how it is loaded
  (`hf:` dtype and quantization; `vllm:` engine options and dtype);
- an API model: the endpoint (host and path of the base URL, `OPENAI_BASE_URL` /
  `ANTHROPIC_BASE_URL` included), so another server is another model.

An alias or hub id names its weights, so it has no fingerprint; folder paths are left out (a
study moved to another disk is still made the same way), and so are credentials in a URL.

    >>> model_identity("openai:gpt-4o")
    {'host': 'api.openai.com'}
    >>> model_identity("openai-compatible:m", base_url="http://user:pw@Box:8000/v1/")
    {'host': 'box:8000/v1'}
    >>> model_identity("hf:smollm2-135m-instruct", options={"dtype": "bfloat16", "rpm": 5})
    {'weights': None, 'adapter_sha': None, 'dtype': 'bfloat16', 'quantization': None}
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import urlsplit

from skillmix_utils.core.errors import SkillmixError

# API kinds: the environment variable that may set the base URL, and the default host.
API_ENDPOINTS = {"openai": ("OPENAI_BASE_URL", "api.openai.com"),
                 "openai-compatible": ("OPENAI_BASE_URL", None),
                 "anthropic": ("ANTHROPIC_BASE_URL", "api.anthropic.com")}


def base_url_of(kind: str, base_url: str | None = None) -> str | None:
    """The base URL an API backend talks to: `base_url`, else the kind's environment variable."""
    env = API_ENDPOINTS.get(kind, (None, None))[0]
    return base_url or (os.environ.get(env) if env else None) or None


def endpoint(kind: str, base_url: str | None = None) -> str | None:
    """The server of an API model as identity: host[:port] and path, lower-cased host, no
    credentials, no trailing slash; the provider's host when no base URL is set."""
    url = base_url_of(kind, base_url)
    if not url:
        return API_ENDPOINTS.get(kind, (None, None))[1]
    parts = urlsplit(url if "//" in url else "//" + url)
    host = parts.netloc.rpartition("@")[2].lower()
    return host + parts.path.rstrip("/")


def adapter_fingerprint(adapter: str | None) -> str | None:
    """sha256 of a LoRA adapter folder's weights and adapter_config.json (its alpha and target
    modules change what the same weights do); None without an adapter."""
    if not adapter:
        return None
    folder = Path(adapter).expanduser()
    files = sorted(p for p in folder.glob("adapter_model*") if p.is_file()) if folder.is_dir() else []
    if not files:
        raise SkillmixError(f"{adapter} has no adapter_model.safetensors/.bin", field="adapter")
    h = hashlib.sha256()
    for p in [*files, folder / "adapter_config.json"]:
        if p.is_file():
            h.update(p.name.encode() + b"\0")
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def checkpoint_fingerprint(folder: str | Path) -> str | None:
    """A full checkpoint folder's weight files by name, size and modification time (hashing
    26 GB would take minutes; saving new weights in place changes the times); None when
    `folder` is not a folder (an alias or hub id names its weights)."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()


def model_identity(spec: str, *, adapter: str | None = None, base_url: str | None = None,
                   options: dict | None = None) -> dict:
    """Everything besides the request that decides what `spec` writes (see the module docstring).

    `options` are the backend options of the spec (a config's `options`): only those that change
    how a model is loaded count (dtype and quantization for hf:, engine_options for vllm:).
    """
    kind, _, model = str(spec).partition(":")
    options = options or {}
    if kind in API_ENDPOINTS:
        return {"host": endpoint(kind, base_url)}
    made = {"weights": checkpoint_fingerprint(model), "adapter_sha": adapter_fingerprint(adapter)}
    if kind == "vllm":
        made["engine_options"] = dict(options.get("engine_options") or {})
        # The dtype the engine is started with (llm.models.resolve_dtype), told apart from
        # vLLM's own "auto" (the checkpoint's dtype) that engines used before.
        made["dtype"] = made["engine_options"].get("dtype") or "auto"
    else:
        made["dtype"] = options.get("dtype") or "auto"
        # "none" is a full-precision load, the same as no quantization option.
        made["quantization"] = None if options.get("quantization") in (None, "none") \
            else options.get("quantization")
    return made
