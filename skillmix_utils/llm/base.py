"""The backend interface: cache lookup, budget, rate limits, concurrency, retries, results.

A provider subclass implements `_call` (one sample of one conversation, returning a `Reply`)
or overrides `_run_jobs` (local models generate a whole batch at once). Everything else, the
order of results, the cache and the budget cap, lives here once. What was spent lives in the
backend's `Budget` (llm/cost.py): each paid reply is charged there as it arrives (`_record`),
before anything else can fail, and a stage's backends share the stage's Budget.
"""
from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import logging
import time
import weakref

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.redact import describe_error
from skillmix_utils.llm.batch import run_batch
from skillmix_utils.llm.cache import NullCache, ResponseCache, cache_key
from skillmix_utils.llm.cost import Budget, price_of, request_cost
from skillmix_utils.llm.failures import DEFAULT_THRESHOLD, CircuitBreaker
from skillmix_utils.llm.limits import RateLimits
from skillmix_utils.llm.loop import LoopThread
from skillmix_utils.llm.messages import (
    BUDGET_EXCEEDED,
    ChatResult,
    Job,
    MalformedReply,
    Reply,
    check_conversations,
)
from skillmix_utils.llm.models import cache_dir as skillmix_cache

log = logging.getLogger("skillmix.llm")

# The rate-limit reservation of the request the current task is making: the SDK client's
# response hook reads it to compare the provider's `remaining` with what we had sent then.
current_ticket: contextvars.ContextVar = contextvars.ContextVar("skillmix_ticket", default=None)


def finish_of_old_entry(value: dict, max_tokens: int) -> str | None:
    """Why a reply cached before skillmix kept the reason ended, as far as its usage tells:
    "length" when it used every one of the request's max_tokens (the key holds max_tokens, so
    they are this request's), else None (not known).

    >>> finish_of_old_entry({"output_tokens": 32}, 32), finish_of_old_entry({"output_tokens": 7}, 32)
    ('length', None)
    """
    return "length" if max_tokens > 0 and value.get("output_tokens", 0) >= max_tokens else None


class Backend:
    """Common machinery; subclasses set `kind` and implement `_call` or `_run_jobs`."""

    kind = "base"
    malformed_errors: tuple = (MalformedReply, json.JSONDecodeError)
    probe_first = False  # API backends: send one request alone first (see `_run_jobs`)

    def __init__(self, model: str, *, cache_dir=None, use_cache: bool = True,
                 concurrency: int = 8, budget_usd: float | None = None,
                 budget: Budget | None = None, rpm=None, tpm=None,
                 base_url: str | None = None, prices: dict | None = None, progress: bool = True,
                 malformed_retries: int = 3, batch: bool = False, poll_interval: float = 30.0,
                 batch_timeout: float | None = None, circuit_breaker: int = DEFAULT_THRESHOLD,
                 **_ignored):
        self.model = model
        self.base_url = base_url
        self.concurrency = max(1, int(concurrency))
        # `budget` (shared, e.g. a stage's) holds what was spent; else a private one capped at
        # `budget_usd`.
        self.budget = budget if budget is not None else Budget(budget_usd)
        self.limits = RateLimits(rpm, tpm)
        # provider tokens per estimated token (learnt from usage), for the tpm reservation
        self._token_ratio = 1.0
        self._probed = False
        self._runner = LoopThread(f"skillmix-{self.kind}")
        weakref.finalize(self, self._runner.close)
        self.price = price_of(model, prices) if self.kind not in ("hf", "vllm") else None
        self.progress = progress
        self.malformed_retries = malformed_retries
        self.batch = batch
        self.poll_interval, self.batch_timeout = poll_interval, batch_timeout
        self._reserved = 0.0    # worst case of this backend's requests in flight
        self._sent: dict[int, float] = {}   # requests on the wire: id -> when sent (monotonic)
        self._ids = itertools.count()
        self._secrets: tuple[str, ...] = ()
        self.breaker = CircuitBreaker(f"{self.kind}:{model}", circuit_breaker)
        if use_cache:
            self.cache = ResponseCache(cache_dir or skillmix_cache() / "llm")
        else:
            self.cache = NullCache()

    @property
    def waiting_s(self) -> float:
        """How long the oldest request in flight has waited for its reply (0 with none): what
        a stage's progress line shows when a server stalls."""
        started = list(self._sent.values())
        return time.monotonic() - min(started) if started else 0.0

    @property
    def spent_usd(self) -> float:
        """What this backend's Budget has been charged in this process (shared budgets: by
        every backend sharing it)."""
        return self.budget.spent_usd

    # --- identity ------------------------------------------------------------------------
    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.model}"

    def _key_extra(self) -> dict:
        """Parts of the cache key beyond the request (e.g. server host, adapter fingerprint)."""
        return {}

    def key(self, messages, temperature, max_tokens, seed, index) -> str:
        """The cache key of sample `index` of one request."""
        return cache_key(kind=self.kind, model=self.model, messages=messages,
                         temperature=float(temperature), max_tokens=int(max_tokens),
                         seed=seed, index=int(index), **self._key_extra())

    # --- public API ----------------------------------------------------------------------
    def chat(self, conversations, temperature: float = 0.7, max_tokens: int = 512, n: int = 1,
             seed: int | None = None) -> list[ChatResult]:
        """One ChatResult per conversation, in order; failures are results with `.error`.

        Runs on the backend's own event loop in a daemon thread (kept between calls, with
        its SDK client and open connections), so it also works inside a running event loop
        (Jupyter).
        """
        return self._runner.run(self.achat(conversations, temperature=temperature,
                                           max_tokens=max_tokens, n=n, seed=seed))

    def close(self) -> None:
        """Stop the backend's event loop thread (a later `chat` starts it again)."""
        self._runner.close()

    async def achat(self, conversations, temperature: float = 0.7, max_tokens: int = 512,
                    n: int = 1, seed: int | None = None) -> list[ChatResult]:
        """Async form of `chat`."""
        convs = check_conversations(conversations)
        if n < 1:
            raise SkillmixError("n must be at least 1", field="n")
        params = {"temperature": temperature, "max_tokens": max_tokens, "n": n, "seed": seed,
                  "model": self.spec}
        jobs = []
        for i, conv in enumerate(convs):
            for j in range(n):
                # Sample j under a fixed seed uses seed + j: n samples differ, and sample j is
                # the same whatever n was asked for (so n=3 after n=2 makes one new call).
                s = None if seed is None else seed + j
                jobs.append(Job(i, j, self.key(conv, temperature, max_tokens, seed, j), conv, s))
        hits = self.cache.get_many([jb.key for jb in jobs])
        # identical requests in one call are made once
        todo = list({jb.key: jb for jb in jobs if jb.key not in hits}.values())
        outcomes: dict[str, dict] = {k: {**v, "cached": True} for k, v in hits.items()}
        if todo:
            outcomes.update(await self._run_jobs(todo, temperature, max_tokens))
        results = []
        for i in range(len(convs)):
            res = ChatResult(params=dict(params), cached=True)
            for jb in jobs[i * n:(i + 1) * n]:
                o = outcomes.get(jb.key) or {"error": "not_run"}
                if o.get("error"):
                    res.error = res.error or o["error"]
                    res.cached = False
                    continue
                res.texts.append(o["text"])
                res.finish_reasons.append(o["finish_reason"] if "finish_reason" in o
                                          else finish_of_old_entry(o, max_tokens))
                res.input_tokens += o.get("input_tokens", 0)
                res.output_tokens += o.get("output_tokens", 0)
                res.cost_usd = round(res.cost_usd + o.get("cost_usd", 0.0), 10)
                res.cached = res.cached and o.get("cached", False)
            results.append(res)
        return results

    # --- the work --------------------------------------------------------------------------
    def _estimate(self, job: Job, max_tokens: int) -> tuple[int, float]:
        """Rough tokens and worst-case dollars of one request, for tpm and the budget."""
        tokens_in = sum(len(m["content"]) for m in job.messages) // 4 + 4 * len(job.messages)
        return (int(tokens_in * self._token_ratio) + max_tokens,
                request_cost(self.price, tokens_in, max_tokens, self.batch))

    def _learn_tokens(self, job: Job, reply: Reply) -> None:
        """Move the tpm estimate towards the provider's own count of input tokens."""
        if reply.input_tokens and self.limits.active:
            est = sum(len(m["content"]) for m in job.messages) // 4 + 4 * len(job.messages)
            ratio = reply.input_tokens / max(1, est)
            # rise at once (too low an estimate is refused), fall slowly
            self._token_ratio = max(ratio, 0.9 * self._token_ratio + 0.1 * ratio)

    def _over_budget(self, usd: float) -> bool:
        return not self.budget.allows(self._reserved + usd)

    def _record(self, job: Job, reply: Reply, batch: bool = False) -> dict:
        usd = request_cost(self.price, reply.input_tokens, reply.output_tokens, batch)
        # Charged first: the money is spent whatever happens to this call afterwards.
        self.budget.charge(usd)
        # The finish reason goes in the cached value, never the key: old entries stay valid.
        value = {"text": reply.text, "input_tokens": reply.input_tokens,
                 "output_tokens": reply.output_tokens, "cost_usd": usd, "model": self.spec,
                 "finish_reason": reply.finish_reason}
        self.cache.put(job.key, value)
        return {**value, "cached": False}

    async def _run_jobs(self, jobs: list[Job], temperature, max_tokens) -> dict[str, dict]:
        """Make the missing samples concurrently; returns {key: outcome}."""
        if self.batch:
            return await run_batch(self, jobs, temperature, max_tokens)

        sem = asyncio.Semaphore(self.concurrency)
        out: dict[str, dict] = {}
        stop = False
        bar = self._bar(len(jobs), "req")

        async def one(job: Job):
            nonlocal stop
            async with sem:
                tokens, usd = self._estimate(job, max_tokens)
                if stop or self._over_budget(usd):
                    stop = True
                    out[job.key] = {"error": BUDGET_EXCEEDED}
                    return
                if self.breaker.open:   # refused or down: send nothing more
                    out[job.key] = {"error": "not_sent"}
                    return
                self._reserved += usd
                sent = next(self._ids)
                try:
                    current_ticket.set(await self.limits.acquire(tokens, output=max_tokens))
                    self._sent[sent] = time.monotonic()
                    reply = await self._call_with_retries(job, temperature, max_tokens)
                    self.limits.settle(current_ticket.get(), reply.output_tokens)
                    out[job.key] = self._record(job, reply)
                    self._learn_tokens(job, reply)
                    self.breaker.success()
                except Exception as exc:  # noqa: BLE001 - failures are data
                    out[job.key] = {"error": describe_error(exc, self._secrets)}
                    self.breaker.failure(exc, out[job.key]["error"])
                    log.warning("%s request failed: %s", self.spec, out[job.key]["error"])
                finally:
                    self._sent.pop(sent, None)
                    self._reserved -= usd
                    bar.update(1)
                    bar.set_postfix_str(f"${self.spent_usd:.4f}", refresh=False)

        async with self._session():
            if self.probe_first and not self._probed and len(jobs) > 1:
                # The first request of a backend's life goes alone: its response's rate-limit
                # headers tell the limiter the provider's limits before a burst can overrun them.
                await one(jobs[0])
                jobs = jobs[1:]
            self._probed = True
            await asyncio.gather(*(one(jb) for jb in jobs))
        bar.close()
        self.breaker.check()   # a refusal or a dead endpoint stops the stage, loudly
        return out

    def _bar(self, total: int, unit: str):
        """The progress bar (running cost in its postfix); `progress=False` hides it."""
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=self.spec, unit=unit, disable=not self.progress,
                    leave=False)

    async def _call_with_retries(self, job: Job, temperature, max_tokens) -> Reply:
        # The SDKs retry 429/5xx/timeouts/cut connections themselves; a 200 with a malformed
        # body raises inside the SDK and is not retried there, so it is retried here.
        for attempt in range(self.malformed_retries + 1):
            try:
                return await self._call(job.messages, temperature=temperature,
                                        max_tokens=max_tokens, seed=job.seed)
            except self.malformed_errors as exc:
                if attempt == self.malformed_retries:
                    raise
                log.info("%s malformed reply, retrying: %s", self.spec,
                         describe_error(exc, self._secrets))
                await asyncio.sleep(min(0.05 * 2 ** attempt, 2.0))
        raise AssertionError("unreachable")

    def _session(self):
        """Async context manager around one `achat` (API backends open their client here)."""
        import contextlib
        return contextlib.nullcontext()

    async def _call(self, messages, *, temperature, max_tokens, seed) -> Reply:
        raise NotImplementedError
