"""vLLM offline inference (`vllm:<model>`): base model plus an optional LoRA adapter (CUDA only).

vllm is imported when the backend is built; without it, a SkillmixError says how to install
it. `parity_check` compares vLLM's greedy outputs with transformers + peft on the same prompts.
"""
from __future__ import annotations

import asyncio
import logging

from ..errors import SkillmixError
from .base import Backend, Job, Reply
from .hf_backend import adapter_fingerprint
from .redact import describe_error

log = logging.getLogger("skillmix.llm")
_ENGINES: dict = {}


def import_vllm():
    """The vllm module, or a SkillmixError explaining that it is missing."""
    try:
        import vllm
    except ImportError:
        raise SkillmixError("the vllm: backend needs vLLM on a CUDA machine: "
                            "pip install 'skillmix[vllm]' (or use hf:)", field="model") from None
    return vllm


def build_requests(conversations, *, temperature: float, max_tokens: int, seed=None,
                   adapter: str | None = None, max_lora_rank: int = 64) -> dict:
    """Plain-data description of one vLLM call: the engine, sampling and LoRA arguments.

    >>> r = build_requests([[{"role": "user", "content": "Hi"}]], temperature=0, max_tokens=8,
    ...                    adapter="/ckpt/adapter")
    >>> r["engine"]["enable_lora"], r["sampling"]["temperature"], r["lora"]
    (True, 0.0, {'lora_name': 'adapter', 'lora_int_id': 1, 'lora_path': '/ckpt/adapter'})
    """
    sampling = {"temperature": float(temperature), "max_tokens": int(max_tokens), "n": 1}
    if seed is not None:
        sampling["seed"] = int(seed)
    lora = {"lora_name": "adapter", "lora_int_id": 1, "lora_path": adapter} if adapter else None
    engine = {"enable_lora": bool(adapter)}
    if adapter:
        engine["max_lora_rank"] = max_lora_rank
    return {"messages": [list(c) for c in conversations], "sampling": sampling, "lora": lora,
            "engine": engine}


class VLLMBackend(Backend):
    """`vllm.LLM(model, enable_lora=True)` with a `LoRARequest` per call when adapter= is set."""

    kind = "vllm"

    def __init__(self, model: str, *, adapter: str | None = None, max_lora_rank: int = 64,
                 engine_options: dict | None = None, **options):
        import_vllm()
        super().__init__(model, **options)
        from ..models import resolve_model

        self.path = resolve_model(model)
        self.adapter = adapter
        self.adapter_sha = adapter_fingerprint(adapter)
        self.max_lora_rank = max_lora_rank
        self.engine_options = engine_options or {}

    def _key_extra(self) -> dict:
        return {"adapter": self.adapter, "adapter_sha": self.adapter_sha}

    def engine(self):
        """The vllm.LLM for this model (one per process)."""
        vllm = import_vllm()
        ident = (self.path, bool(self.adapter), self.max_lora_rank)
        if ident not in _ENGINES:
            spec = build_requests([], temperature=0, max_tokens=1, adapter=self.adapter,
                                  max_lora_rank=self.max_lora_rank)["engine"]
            _ENGINES[ident] = vllm.LLM(model=self.path, **spec, **self.engine_options)
        return _ENGINES[ident]

    def generate(self, conversations, *, temperature: float, max_tokens: int,
                 seed=None) -> list[Reply]:
        """Replies for conversations in one vLLM call."""
        vllm = import_vllm()
        from vllm.lora.request import LoRARequest

        req = build_requests(conversations, temperature=temperature, max_tokens=max_tokens,
                             seed=seed, adapter=self.adapter, max_lora_rank=self.max_lora_rank)
        lora = LoRARequest(**req["lora"]) if req["lora"] else None
        outs = self.engine().chat(req["messages"], vllm.SamplingParams(**req["sampling"]),
                                  lora_request=lora, use_tqdm=False)
        return [Reply(o.outputs[0].text, len(o.prompt_token_ids or []),
                      len(o.outputs[0].token_ids)) for o in outs]

    async def _run_jobs(self, jobs: list[Job], temperature, max_tokens) -> dict[str, dict]:
        return await asyncio.to_thread(self._run_sync, jobs, temperature, max_tokens)

    def _run_sync(self, jobs, temperature, max_tokens):
        out: dict[str, dict] = {}
        groups: dict = {}
        for jb in jobs:
            groups.setdefault(jb.seed, []).append(jb)
        for seed, group in groups.items():
            try:
                replies = self.generate([jb.messages for jb in group], temperature=temperature,
                                        max_tokens=max_tokens, seed=seed)
                out.update({jb.key: self._record(jb, r) for jb, r in zip(group, replies)})
            except Exception as exc:  # noqa: BLE001 - failures are data
                out.update({jb.key: {"error": describe_error(exc)} for jb in group})
        return out


def parity_check(base: str, adapter: str | None, prompts: list[str], max_tokens: int = 32) -> dict:
    """Greedy outputs of vLLM vs transformers+peft for the same prompts (user turns).

    Returns {"match": fraction equal, "pairs": [(vllm_text, hf_text), ...]}.
    """
    from .hf_backend import HFBackend

    convs = [[{"role": "user", "content": p}] for p in prompts]
    v = VLLMBackend(base, adapter=adapter, use_cache=False)
    h = HFBackend(base, adapter=adapter, use_cache=False)
    vt = [r.text.strip() for r in v.generate(convs, temperature=0, max_tokens=max_tokens)]
    ht = [r.text for r in h.generate([h.render(c) for c in convs], temperature=0,
                                     max_tokens=max_tokens)]
    pairs = list(zip(vt, ht))
    return {"match": sum(a == b for a, b in pairs) / max(1, len(pairs)), "pairs": pairs}
