"""vLLM offline inference (`vllm:<model>`): base model plus an optional LoRA adapter (CUDA only).

vllm is imported when the backend is built; without it, a SkillmixError says how to install
it. `parity_check` compares vLLM's greedy outputs with transformers + peft on the same prompts.

Engine options come from the student's model options in the study config, e.g.

    model: {spec: "vllm:llama-2-13b-chat",
            options: {engine_options: {gpu_memory_utilization: 0.85, tensor_parallel_size: 4,
                                       max_model_len: 4096, dtype: bfloat16}}}

Several GPUs are vLLM's own business: `tensor_parallel_size` shards the model over them
(`data_parallel_size` runs replicas, on vLLM versions that have it). `max_lora_rank` is read
from the adapter (its `r` and `rank_pattern`, rounded up to a rank vLLM supports) unless given.
"""
from __future__ import annotations

import asyncio
import gc
import json
import logging
from pathlib import Path

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.redact import describe_error
from skillmix_utils.llm import hf_backend
from skillmix_utils.llm.base import Backend
from skillmix_utils.llm.hf_backend import HFBackend, adapter_fingerprint
from skillmix_utils.llm.messages import Job, Reply
from skillmix_utils.llm.models import resolve_model

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


# The engine arguments the config may set (others are passed on as they are, for new vLLM
# versions); their meaning is vLLM's.
ENGINE_OPTIONS = ("gpu_memory_utilization", "tensor_parallel_size", "data_parallel_size",
                  "max_model_len", "dtype", "max_num_seqs", "enforce_eager", "seed",
                  "pipeline_parallel_size", "quantization", "max_loras")
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def adapter_rank(adapter: str | Path | None) -> int | None:
    """The largest LoRA rank in an adapter folder (r, or its rank_pattern), or None.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "adapter_config.json").write_text('{"r": 16, "rank_pattern": {"q_proj": 96}}')
    >>> adapter_rank(d)
    96
    """
    if not adapter:
        return None
    path = Path(adapter) / "adapter_config.json"
    if not path.exists():
        raise SkillmixError("not a LoRA adapter folder (no adapter_config.json)", file=str(adapter),
                            field="adapter")
    cfg = json.loads(path.read_text())
    return max([int(cfg.get("r", 8))] + [int(v) for v in (cfg.get("rank_pattern") or {}).values()])


def vllm_lora_rank(rank: int) -> int:
    """The smallest max_lora_rank vLLM accepts that holds `rank`.

    >>> vllm_lora_rank(8), vllm_lora_rank(12), vllm_lora_rank(64), vllm_lora_rank(96)
    (8, 16, 64, 128)
    """
    for r in VLLM_LORA_RANKS:
        if rank <= r:
            return r
    raise SkillmixError(f"LoRA rank {rank} is above vLLM's largest ({VLLM_LORA_RANKS[-1]})",
                        field="adapter")


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

    def __init__(self, model: str, *, adapter: str | None = None,
                 max_lora_rank: int | None = None, engine_options: dict | None = None,
                 **options):
        import_vllm()
        super().__init__(model, **options)

        self.path = resolve_model(model)
        self.adapter = adapter
        self.adapter_sha = adapter_fingerprint(adapter)
        rank = max_lora_rank or adapter_rank(adapter) or 8
        self.max_lora_rank = vllm_lora_rank(rank)
        self.engine_options = dict(engine_options or {})
        if "max_lora_rank" in self.engine_options:
            raise SkillmixError("max_lora_rank is read from the adapter (or the max_lora_rank "
                                "option), not engine_options", field="engine_options")

    def _key_extra(self) -> dict:
        return {"adapter": self.adapter, "adapter_sha": self.adapter_sha}

    def engine(self):
        """The vllm.LLM for this model (one per process)."""
        vllm = import_vllm()
        ident = (self.path, bool(self.adapter), self.max_lora_rank,
                 json.dumps(self.engine_options, sort_keys=True, default=str))
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


def free_reference(backend) -> None:
    """Drop an HF backend's model from the process and give its GPU memory back."""

    for ident in [k for k in hf_backend._LOADED if k[0] == backend.path]:
        del hf_backend._LOADED[ident]
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def parity_check(base: str, adapter: str | None, prompts: list[str], max_tokens: int = 32,
                 *, engine_options: dict | None = None, max_lora_rank: int | None = None,
                 reference_device: str | None = None) -> dict:
    """Greedy outputs of vLLM vs transformers+peft for the same prompts (user turns).

    One after the other, never both on the GPU: the transformers reference runs first (on
    `reference_device`, default the GPU, in bf16), is freed, and only then does vLLM start its
    engine (with `engine_options`), which then stays for the evaluation itself.
    Returns {"match": fraction equal, "pairs": [(vllm_text, hf_text), ...]}.
    """

    convs = [[{"role": "user", "content": p}] for p in prompts]
    h = HFBackend(base, adapter=adapter, use_cache=False, device=reference_device)
    ht = [r.text for r in h.generate([h.render(c) for c in convs], temperature=0,
                                     max_tokens=max_tokens)]
    free_reference(h)
    v = VLLMBackend(base, adapter=adapter, use_cache=False, engine_options=engine_options,
                    max_lora_rank=max_lora_rank)
    vt = [r.text.strip() for r in v.generate(convs, temperature=0, max_tokens=max_tokens)]
    pairs = list(zip(vt, ht))
    return {"match": sum(a == b for a, b in pairs) / max(1, len(pairs)), "pairs": pairs}
