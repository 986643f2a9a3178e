"""Model backends behind one interface: `get_backend(spec, **options).chat(conversations)`.

    >>> from skillmix_utils.llm import get_backend            # doctest: +SKIP
    >>> backend = get_backend("hf:smollm2-135m-instruct")      # doctest: +SKIP
    >>> backend.chat([[{"role": "user", "content": "Hi"}]])[0].text  # doctest: +SKIP

Specs: "openai:<model>", "anthropic:<model>", "openai-compatible:<model>" (with base_url),
"hf:<alias|folder|hub id>", "vllm:<model>". Providers are imported only when used, so this
package imports without torch, openai or anthropic.
"""
from __future__ import annotations

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.llm.base import Backend
from skillmix_utils.llm.cost import estimate_cost, price_of
from skillmix_utils.llm.messages import BUDGET_EXCEEDED, ChatResult

KINDS = ("openai", "anthropic", "openai-compatible", "hf", "vllm")

__all__ = ["get_backend", "estimate_cost", "price_of", "ChatResult", "Backend", "BUDGET_EXCEEDED",
           "parse_spec", "KINDS"]


def parse_spec(spec: str) -> tuple[str, str]:
    """Split a backend spec into (kind, model).

    >>> parse_spec("openai:gpt-4o")
    ('openai', 'gpt-4o')
    >>> parse_spec("hf:/models/my-student")
    ('hf', '/models/my-student')
    """
    kind, sep, model = str(spec).partition(":")
    if not sep or kind not in KINDS or not model:
        raise SkillmixError(f"unknown backend spec {spec!r}: use one of "
                            + ", ".join(f"{k}:<model>" for k in KINDS), field="model")
    return kind, model


def get_backend(spec: str, *, base_url=None, cache_dir=None, use_cache: bool = True,
                concurrency: int = 8, budget_usd: float | None = None, rpm=None, tpm=None,
                batch: bool = False, adapter: str | None = None, timeout=None,
                max_retries=None, **options) -> Backend:
    """Build the backend for a spec; missing keys or packages raise SkillmixError here.

    Extra options: budget (a shared `cost.Budget`, instead of budget_usd), progress (bool),
    prices ({model: {input, output}}), malformed_retries,
    poll_interval / batch_timeout (batch APIs), batch_size / device / dtype / quantization (hf).

    >>> get_backend("gemini:pro")
    Traceback (most recent call last):
    ...
    skillmix_utils.core.errors.SkillmixError: model: unknown backend spec 'gemini:pro': use one of openai:<model>, anthropic:<model>, openai-compatible:<model>, hf:<model>, vllm:<model>
    """
    kind, model = parse_spec(spec)
    common = dict(cache_dir=cache_dir, use_cache=use_cache, concurrency=concurrency,
                  budget_usd=budget_usd, rpm=rpm, tpm=tpm, batch=batch, **options)
    if kind in ("openai", "anthropic", "openai-compatible"):
        if adapter:
            raise SkillmixError(f"adapter= is for local models; a {kind} server names its "
                                "adapters as models", field="adapter")
        if batch and kind == "openai-compatible":
            raise SkillmixError("batch=True needs openai: or anthropic:", field="batch")
        if kind == "anthropic":
            # a registry: a provider's module (and its SDK) is imported only when it is used
            from skillmix_utils.llm.anthropic_backend import AnthropicBackend
            backend = AnthropicBackend(model, base_url=base_url, timeout=timeout,
                                       max_retries=max_retries, **common)
        else:
            from skillmix_utils.llm.openai_backend import OpenAIBackend  # registry, as above
            backend = OpenAIBackend(model, base_url=base_url, timeout=timeout,
                                    max_retries=max_retries,
                                    compatible=kind == "openai-compatible", **common)
        if backend.budget.capped and backend.price is None and kind != "openai-compatible":
            raise SkillmixError(f"no price for {model!r} in data/prices.yaml, so budget_usd "
                                "cannot be enforced; add it or pass prices=", field="budget_usd")
        return backend
    if batch:
        raise SkillmixError("batch=True is for the openai: and anthropic: batch APIs",
                            field="batch")
    if kind == "hf":
        from skillmix_utils.llm.hf_backend import HFBackend  # registry, as above
        return HFBackend(model, adapter=adapter, **common)
    from skillmix_utils.llm.vllm_backend import VLLMBackend  # registry, as above
    return VLLMBackend(model, adapter=adapter, **common)
