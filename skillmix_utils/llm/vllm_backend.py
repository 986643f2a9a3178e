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

Engines live in the registry of loaded models (`llm.loaded`): backends with the same model,
LoRA rank and engine options share one, each adapter in it under its own LoRA id (vLLM caches
adapters by id, so two adapters under one id would both be served the first one's weights), and
the engine is shut down when the last backend holding it is closed (at the end of its stage).
"""
from __future__ import annotations

import asyncio
import json
import logging
import weakref
from pathlib import Path

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.model_identity import model_identity
from skillmix_utils.core.redact import describe_error
from skillmix_utils.llm import loaded
from skillmix_utils.llm.base import Backend
from skillmix_utils.llm.hf_backend import HFBackend
from skillmix_utils.llm.messages import Job, Reply
from skillmix_utils.llm.models import resolve_model

log = logging.getLogger("skillmix.llm")


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
                   adapter: str | None = None, max_lora_rank: int = 64, lora_id: int = 1) -> dict:
    """Plain-data description of one vLLM call: the engine, sampling and LoRA arguments.
    `lora_id` is the adapter's id in its engine (`Engine.lora_id`); vLLM tells adapters apart
    by id and by name, so both follow it.

    >>> r = build_requests([[{"role": "user", "content": "Hi"}]], temperature=0, max_tokens=8,
    ...                    adapter="/ckpt/adapter", lora_id=2)
    >>> r["engine"]["enable_lora"], r["sampling"]["temperature"], r["lora"]
    (True, 0.0, {'lora_name': 'adapter-2', 'lora_int_id': 2, 'lora_path': '/ckpt/adapter'})
    """
    sampling = {"temperature": float(temperature), "max_tokens": int(max_tokens), "n": 1}
    if seed is not None:
        sampling["seed"] = int(seed)
    lora = ({"lora_name": f"adapter-{lora_id}", "lora_int_id": int(lora_id), "lora_path": adapter}
            if adapter else None)
    engine = {"enable_lora": bool(adapter)}
    if adapter:
        engine["max_lora_rank"] = max_lora_rank
    return {"messages": [list(c) for c in conversations], "sampling": sampling, "lora": lora,
            "engine": engine}


class Engine:
    """One `vllm.LLM` and the LoRA ids it has given out: one per adapter folder and content, so
    an adapter saved again in place is loaded afresh under a new id."""

    def __init__(self, llm):
        self.llm = llm
        self._lora_ids: dict = {}

    def lora_id(self, adapter: str, fingerprint: str | None) -> int:
        """The adapter's id in this engine, from 1 (vLLM's smallest), stable while it lives."""
        return self._lora_ids.setdefault((str(Path(adapter).resolve()), fingerprint),
                                         len(self._lora_ids) + 1)

    @staticmethod
    def shut_down(engine: "Engine") -> None:
        """Stop the engine's processes and let go of its GPU memory (the registry's free hook)."""
        llm = engine.llm
        engine.llm = None
        stop = getattr(llm, "shutdown", None)     # vLLM versions with LLM.shutdown()
        if not callable(stop):                    # older V1 engines: the engine core's
            stop = getattr(getattr(getattr(llm, "llm_engine", None), "engine_core", None),
                           "shutdown", None)
        if callable(stop):
            stop()
        try:   # the in-process parallel state, if this vLLM keeps one
            from vllm.distributed.parallel_state import (
                destroy_distributed_environment,
                destroy_model_parallel,
            )
        except ImportError:
            return
        destroy_model_parallel()
        destroy_distributed_environment()


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
        rank = max_lora_rank or adapter_rank(adapter) or 8
        self.max_lora_rank = vllm_lora_rank(rank)
        self.engine_options = dict(engine_options or {})
        if "max_lora_rank" in self.engine_options:
            raise SkillmixError("max_lora_rank is read from the adapter (or the max_lora_rank "
                                "option), not engine_options", field="engine_options")
        self.made = model_identity(self.spec, adapter=adapter,
                                   options={"engine_options": self.engine_options})
        self._holder = loaded.new_holder()
        weakref.finalize(self, loaded.release, self._holder)

    def _key_extra(self) -> dict:
        return self.made

    def close(self) -> None:
        """Stop the event loop and shut the engine down unless another backend holds it."""
        super().close()
        loaded.release(self._holder)

    def engine(self) -> Engine:
        """This model's engine, shared with equal backends until the last one is closed."""
        vllm = import_vllm()
        key = ("vllm", self.path, self.made.get("weights"), bool(self.adapter),
               self.max_lora_rank, json.dumps(self.engine_options, sort_keys=True, default=str))

        def start() -> Engine:
            spec = build_requests([], temperature=0, max_tokens=1, adapter=self.adapter,
                                  max_lora_rank=self.max_lora_rank)["engine"]
            return Engine(vllm.LLM(model=self.path, **spec, **self.engine_options))

        return loaded.hold(key, self._holder, start, free=Engine.shut_down)

    def generate(self, conversations, *, temperature: float, max_tokens: int,
                 seed=None) -> list[Reply]:
        """Replies for conversations in one vLLM call."""
        vllm = import_vllm()
        from vllm.lora.request import LoRARequest

        engine = self.engine()
        lora_id = engine.lora_id(self.adapter, self.made["adapter_sha"]) if self.adapter else 1
        req = build_requests(conversations, temperature=temperature, max_tokens=max_tokens,
                             seed=seed, adapter=self.adapter, max_lora_rank=self.max_lora_rank,
                             lora_id=lora_id)
        lora = LoRARequest(**req["lora"]) if req["lora"] else None
        outs = engine.llm.chat(req["messages"], vllm.SamplingParams(**req["sampling"]),
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


def parity_check(base: str, adapter: str | None, prompts: list[str], max_tokens: int = 32,
                 *, engine_options: dict | None = None, max_lora_rank: int | None = None,
                 reference_device: str | None = None, backend: VLLMBackend | None = None) -> dict:
    """Greedy outputs of vLLM vs transformers+peft for the same prompts (user turns).

    One after the other, never both on the GPU: the transformers reference runs first (on
    `reference_device`, default the GPU, in bf16), is freed, and only then does vLLM start its
    engine (with `engine_options`). Given the stage's `backend` for this student, the check
    runs on it, so its engine then stays for the evaluation itself; otherwise on a backend of
    its own, whose engine is shut down once it is garbage.
    Returns {"match": fraction equal, "pairs": [(vllm_text, hf_text), ...]}.
    """

    convs = [[{"role": "user", "content": p}] for p in prompts]
    h = HFBackend(base, adapter=adapter, use_cache=False, device=reference_device)
    ht = [r.text for r in h.generate([h.render(c) for c in convs], temperature=0,
                                     max_tokens=max_tokens)]
    h.close()   # freed (unless something else holds it) before vLLM claims the GPU
    v = backend or VLLMBackend(base, adapter=adapter, use_cache=False,
                               engine_options=engine_options, max_lora_rank=max_lora_rank)
    vt = [r.text.strip() for r in v.generate(convs, temperature=0, max_tokens=max_tokens)]
    pairs = list(zip(vt, ht))
    return {"match": sum(a == b for a, b in pairs) / max(1, len(pairs)), "pairs": pairs}
