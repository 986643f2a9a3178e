"""vLLM offline inference (`vllm:<model>`): base model plus an optional LoRA adapter (CUDA only).

vllm is imported when the backend is built; without it, a SkillmixError says how to install
it. `parity_check` compares vLLM's greedy outputs with transformers + peft on the same prompts.

The engine is always given its dtype: the config's `engine_options.dtype`, else the one
transformers loads in (`llm.models.resolve_dtype`: bf16 on a GPU that has it), never vLLM's
"auto" (the checkpoint's dtype: fp16 for LLaMA-2, while the model was trained in bf16). The
context it reserves for (`max_model_len`) is the evaluation's longest conversation (the
`max_model_len` option, `context_length`), not the model's 32k, unless engine_options set it.

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
from skillmix_utils.llm.messages import GreedyTrace, Job, Reply, normal_finish
from skillmix_utils.llm.models import load_tokenizer, resolve_dtype, resolve_model

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
                   adapter: str | None = None, max_lora_rank: int = 64, lora_id: int = 1,
                   logprobs: int | None = None) -> dict:
    """Plain-data description of one vLLM call: the engine, sampling and LoRA arguments.
    `lora_id` is the adapter's id in its engine (`Engine.lora_id`); vLLM tells adapters apart
    by id and by name, so both follow it. `logprobs`: how many of each step's best tokens vLLM
    returns with their log-probabilities.

    >>> r = build_requests([[{"role": "user", "content": "Hi"}]], temperature=0, max_tokens=8,
    ...                    adapter="/ckpt/adapter", lora_id=2)
    >>> r["engine"]["enable_lora"], r["sampling"]["temperature"], r["lora"]
    (True, 0.0, {'lora_name': 'adapter-2', 'lora_int_id': 2, 'lora_path': '/ckpt/adapter'})
    """
    sampling = {"temperature": float(temperature), "max_tokens": int(max_tokens), "n": 1}
    if seed is not None:
        sampling["seed"] = int(seed)
    if logprobs:
        sampling["logprobs"] = int(logprobs)
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
                 max_model_len: int | None = None, **options):
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
        self.dtype = resolve_dtype(self.engine_options.get("dtype", "auto"))
        self.max_model_len = self.engine_options.get("max_model_len", max_model_len)
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
        kwargs = {**build_requests([], temperature=0, max_tokens=1, adapter=self.adapter,
                                   max_lora_rank=self.max_lora_rank)["engine"],
                  **self.engine_options, "dtype": self.dtype}
        if self.max_model_len:
            kwargs["max_model_len"] = int(self.max_model_len)
        key = ("vllm", self.path, self.made.get("weights"), bool(self.adapter),
               json.dumps(kwargs, sort_keys=True, default=str))

        def start() -> Engine:
            return Engine(vllm.LLM(model=self.path, **kwargs))

        return loaded.hold(key, self._holder, start, free=Engine.shut_down)

    def _chat(self, conversations, **sampling) -> list:
        """vLLM's outputs for conversations in one call (the adapter under its own id)."""
        vllm = import_vllm()
        from vllm.lora.request import LoRARequest

        engine = self.engine()
        lora_id = engine.lora_id(self.adapter, self.made["adapter_sha"]) if self.adapter else 1
        req = build_requests(conversations, adapter=self.adapter,
                             max_lora_rank=self.max_lora_rank, lora_id=lora_id, **sampling)
        lora = LoRARequest(**req["lora"]) if req["lora"] else None
        return engine.llm.chat(req["messages"], vllm.SamplingParams(**req["sampling"]),
                               lora_request=lora, use_tqdm=False)

    def generate(self, conversations, *, temperature: float, max_tokens: int,
                 seed=None) -> list[Reply]:
        """Replies for conversations in one vLLM call."""
        outs = self._chat(conversations, temperature=temperature, max_tokens=max_tokens,
                          seed=seed)
        return [Reply(o.outputs[0].text, len(o.prompt_token_ids or []),
                      len(o.outputs[0].token_ids),
                      normal_finish(getattr(o.outputs[0], "finish_reason", None))) for o in outs]

    def greedy_traces(self, conversations, *, max_tokens: int, top_k: int) -> list[GreedyTrace]:
        """Greedy replies with each step's `top_k` log-probabilities."""
        outs = self._chat(conversations, temperature=0, max_tokens=max_tokens, logprobs=top_k)
        traces = []
        for o in outs:
            c = o.outputs[0]
            top = [{int(t): float(getattr(lp, "logprob", lp)) for t, lp in step.items()}
                   for step in (c.logprobs or [])]
            traces.append(GreedyTrace(c.text.strip(), list(c.token_ids), top))
        return traces

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


# How many of each step's best tokens both sides report: vLLM's own tests of its models against
# transformers compare greedy outputs with this k (tests/models/utils.py, check_logprobs_close).
PARITY_TOP_K = 5
# Unit roundoff of each dtype (2^-mantissa bits).
UNIT_ROUNDOFF = {"bfloat16": 2.0 ** -8, "float16": 2.0 ** -11, "half": 2.0 ** -11,
                 "float32": 2.0 ** -24, "float": 2.0 ** -24}


def logprob_tolerance(dtype: str) -> float:
    """How far rounding alone moves the mean log-probability of a reply's tokens between two
    implementations of one model in `dtype`: a few units in the last place of logits of
    magnitude up to ~32, i.e. 32 unit roundoffs (0.125 nats in bf16, 0.016 in fp16), and no
    less than 1e-3 (fp32 kernels that sum in another order). Another adapter, LoRA scale or
    dtype moves it by tenths of a nat.

    >>> logprob_tolerance("bfloat16"), logprob_tolerance("float32")
    (0.125, 0.001)
    """
    return max(32 * UNIT_ROUNDOFF.get(str(dtype).removeprefix("torch."), 2.0 ** -8), 1e-3)


def divergence(a: GreedyTrace, b: GreedyTrace, tolerance: float) -> str | None:
    """Why two greedy decodings of one prompt by equal models disagree, or None when they agree.

    Compared: the tokens up to where the shorter one ends, or up to the first step where they
    part. They may part only at a near tie: each side's token among the other's best `top`
    tokens at that step (vLLM's own rule for its models against transformers). And the
    log-probabilities both sides give the tokens compared must agree within `tolerance` on
    average (`logprob_tolerance`): rounding flips a near tie, it does not reshape the
    distribution as another adapter does.

    >>> same = GreedyTrace("a b", [1, 2], [{1: -0.1, 5: -2.4}, {2: -0.2, 7: -0.22}])
    >>> tie = GreedyTrace("a c", [1, 7], [{1: -0.1, 5: -2.4}, {7: -0.19, 2: -0.21}])
    >>> far = GreedyTrace("z", [9], [{9: -0.01, 8: -6.0}])
    >>> shifted = GreedyTrace("a b", [1, 2], [{1: -0.9, 5: -1.0}, {2: -0.6, 7: -0.7}])
    >>> [divergence(same, x, 0.125) for x in (same, tie, far, shifted)]
    [None, None, 'step 1: token 1 vs 9, not among the best of the other', 'log-probabilities differ by 0.60 on average (rounding: 0.125)']
    """
    gaps = []
    for i, (x, y) in enumerate(zip(a.tokens, b.tokens)):
        ta = a.top[i] if i < len(a.top) else {}
        tb = b.top[i] if i < len(b.top) else {}
        if x != y and not (y in ta and x in tb):
            return f"step {i + 1}: token {x} vs {y}, not among the best of the other"
        gaps += [abs(ta[t] - tb[t]) for t in {x, y} if t in ta and t in tb]
        if x != y:
            break
    mean = sum(gaps) / len(gaps) if gaps else 0.0
    if mean > tolerance:
        return f"log-probabilities differ by {mean:.2f} on average (rounding: {tolerance:.3g})"
    return None


def parity_check(base: str, adapter: str | None, prompts: list[str], max_tokens: int = 32,
                 *, engine_options: dict | None = None, max_lora_rank: int | None = None,
                 reference_device: str | None = None, backend: VLLMBackend | None = None,
                 top_k: int = PARITY_TOP_K) -> dict:
    """Greedy decodings of vLLM vs transformers + peft for the same prompts (user turns),
    compared like with like: the reference loads in the engine's dtype with the adapter kept
    unmerged (as vLLM applies it), and each prompt's tokens and log-probabilities are compared
    with `divergence`, within the rounding of that dtype. Made the same way, every prompt
    agrees.

    One after the other, never both on the GPU: the transformers reference runs first (on
    `reference_device`, default the GPU), is freed, and only then does vLLM start its engine
    (with `engine_options`). Given the stage's `backend` for this student, the check runs on
    it, so its engine then stays for the evaluation itself; otherwise on a backend of its own,
    whose engine is shut down once it is garbage.
    Returns {"match": fraction of prompts that agree, "dtype": the dtype of both,
    "pairs": [(vllm_text, hf_text), ...], "diverged": [why, or None, per prompt]}.
    """

    convs = [[{"role": "user", "content": p}] for p in prompts]
    v = backend or VLLMBackend(base, adapter=adapter, use_cache=False,
                               engine_options=engine_options, max_lora_rank=max_lora_rank)
    h = HFBackend(base, adapter=adapter, use_cache=False, device=reference_device,
                  dtype=v.dtype, merge_adapter=False)
    ref = h.greedy_traces(convs, max_tokens=max_tokens, top_k=top_k)
    h.close()   # freed (unless something else holds it) before vLLM claims the GPU
    got = v.greedy_traces(convs, max_tokens=max_tokens, top_k=top_k)
    tolerance = logprob_tolerance(v.dtype)
    why = [divergence(a, b, tolerance) for a, b in zip(got, ref)]
    return {"match": sum(w is None for w in why) / max(1, len(why)), "dtype": v.dtype,
            "pairs": [(a.text, b.text) for a, b in zip(got, ref)], "diverged": why}


def context_length(model: str, turns: list[tuple[str, ...]], max_tokens: int) -> int:
    """The context an engine must hold for conversations of these user turns, each turn
    answered with up to `max_tokens`: the longest chat-templated conversation (earlier replies
    counted at `max_tokens`), plus a margin for a reply re-tokenised in context, rounded up to
    256 tokens.

    Example: the two-turn writing step of a 512-token student needs about 1,500, where a
    Mistral-7B engine left alone reserves its KV cache for 32,768."""
    tok = load_tokenizer(model)
    longest = 0
    for user_turns in turns:
        messages = []
        for t in user_turns:
            messages += [{"role": "user", "content": t}, {"role": "assistant", "content": ""}]
        text = tok.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        longest = max(longest, len(ids) + len(user_turns) * (max_tokens + 16))
    return -(-longest // 256) * 256
