"""OpenAI Batch and Anthropic Message Batches: submit, poll, collect, resume after a restart.

`get_backend(spec, batch=True)` routes cache misses here. Each request's custom id is its cache
key, and the batch id with its keys is saved in the cache database at submission, so a process
that is restarted finds its open batches and polls them instead of paying again. Collected
replies land in the same response cache as ordinary calls, priced at the batch discount.
Items still unfinished after `batch_timeout` seconds come back with
`error="batch_pending: <id>"`; call again later to collect them.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import time

from skillmix_utils.core.redact import describe_error
from skillmix_utils.llm.messages import BUDGET_EXCEEDED, Job, Reply

log = logging.getLogger("skillmix.llm")

OPENAI_OPEN = ("validating", "in_progress", "finalizing", "cancelling")
MAX_BATCH = 50_000  # both providers' per-batch request limit (OpenAI: 50,000; Anthropic: 100,000)


async def run_batch(backend, jobs: list[Job], temperature, max_tokens) -> dict[str, dict]:
    """Get every job's reply through the provider's batch API; {key: outcome}."""
    provider = backend.kind
    out: dict[str, dict] = {}
    wanted = {j.key for j in jobs}
    async with backend._session():
        pending = backend.cache.pending_batches(sorted(wanted), provider)
        covered = {k for ks in pending.values() for k in ks}
        new = []
        for job in jobs:
            if job.key in covered:
                continue
            _, usd = backend._estimate(job, max_tokens)
            if backend._over_budget(usd):
                out[job.key] = {"error": BUDGET_EXCEEDED}
                continue
            backend._reserved += usd
            new.append(job)
        for start in range(0, len(new), MAX_BATCH):
            chunk = new[start:start + MAX_BATCH]
            try:
                bid = await SUBMIT[provider](backend, chunk, temperature, max_tokens)
            except Exception as exc:  # noqa: BLE001 - failures are data
                err = describe_error(exc, backend._secrets)
                out.update({j.key: {"error": err} for j in chunk})
                backend.breaker.failure(exc, err)
                backend.breaker.check()   # a refused key stops here, before any polling
                continue
            backend.cache.save_batch(bid, provider, {j.key: j.key for j in chunk},
                                     {"model": backend.model, "n": len(chunk)})
            log.info("%s: submitted batch %s with %d requests", backend.spec, bid, len(chunk))
            pending[bid] = [j.key for j in chunk]
        backend._reserved = 0.0
        deadline = None if backend.batch_timeout is None else time.monotonic() + backend.batch_timeout
        done = await asyncio.gather(*(_wait_and_collect(backend, bid, deadline)
                                      for bid in pending))
    for bid, collected in zip(pending, done):
        for key in pending[bid]:
            if key in wanted:
                out[key] = collected.get(key) or {"error": f"batch_pending: {bid}"}
    return out


async def _wait_and_collect(backend, bid: str, deadline) -> dict[str, dict]:
    """Poll one batch until it ends (or the deadline), then store and return its results."""
    provider = backend.kind
    try:
        while True:
            status = await STATUS[provider](backend, bid)
            if status is not None:
                break
            if deadline is not None and time.monotonic() >= deadline:
                log.info("%s: batch %s still running; call again to collect", backend.spec, bid)
                return {}
            await asyncio.sleep(backend.poll_interval)
        results = await COLLECT[provider](backend, bid)
    except Exception as exc:  # noqa: BLE001 - leave the batch open: a later call resumes
        err = describe_error(exc, backend._secrets)
        log.warning("%s: batch %s: %s", backend.spec, bid, err)
        return {}
    out = {}
    for key, reply in results.items():
        if isinstance(reply, Reply):
            out[key] = backend._record(Job(0, 0, key, [], None), reply, batch=True)
        else:
            out[key] = {"error": reply}
    backend.cache.close_batch(bid, f"collected:{status}")
    return out


# --- OpenAI ------------------------------------------------------------------------------
async def _openai_submit(backend, jobs, temperature, max_tokens) -> str:
    lines = []
    for j in jobs:
        body = backend.request_body(j.messages, temperature=temperature, max_tokens=max_tokens,
                                    seed=j.seed)
        lines.append(json.dumps({"custom_id": j.key, "method": "POST",
                                 "url": "/v1/chat/completions", "body": body}))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    client = backend._client
    f = await client.files.create(file=("skillmix-batch.jsonl", io.BytesIO(data)), purpose="batch")
    batch = await client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                        completion_window="24h")
    return batch.id


async def _openai_status(backend, bid) -> str | None:
    batch = await backend._client.batches.retrieve(bid)
    return None if batch.status in OPENAI_OPEN else batch.status


async def _openai_collect(backend, bid) -> dict:
    client = backend._client
    batch = await client.batches.retrieve(bid)
    results: dict = {}
    for fid in (batch.output_file_id, batch.error_file_id):
        if not fid:
            continue
        content = await client.files.content(fid)
        for line in content.content.decode("utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            resp = row.get("response") or {}
            if resp.get("status_code") == 200 and not row.get("error"):
                try:
                    results[row["custom_id"]] = backend.parse_reply(resp["body"])
                    continue
                except ValueError as exc:
                    results[row["custom_id"]] = describe_error(exc, backend._secrets)
                    continue
            err = row.get("error") or (resp.get("body") or {}).get("error") or resp
            results[row["custom_id"]] = describe_error(
                RuntimeError(f"batch item failed: {json.dumps(err)[:500]}"), backend._secrets)
    return results


# --- Anthropic ---------------------------------------------------------------------------
async def _anthropic_submit(backend, jobs, temperature, max_tokens) -> str:
    requests = [{"custom_id": j.key,
                 "params": backend.request_params(j.messages, temperature=temperature,
                                                  max_tokens=max_tokens)} for j in jobs]
    batch = await backend._client.messages.batches.create(requests=requests)
    return batch.id


async def _anthropic_status(backend, bid) -> str | None:
    batch = await backend._client.messages.batches.retrieve(bid)
    return batch.processing_status if batch.processing_status == "ended" else None


async def _anthropic_collect(backend, bid) -> dict:
    results: dict = {}
    async for row in await backend._client.messages.batches.results(bid):
        res = row.result
        if res.type == "succeeded":
            results[row.custom_id] = backend.parse_reply(res.message)
        else:
            detail = getattr(res, "error", None)
            detail = detail.model_dump() if hasattr(detail, "model_dump") else detail
            results[row.custom_id] = describe_error(
                RuntimeError(f"batch item {res.type}: {json.dumps(detail, default=str)[:500]}"),
                backend._secrets)
    return results


SUBMIT = {"openai": _openai_submit, "anthropic": _anthropic_submit}
STATUS = {"openai": _openai_status, "anthropic": _anthropic_status}
COLLECT = {"openai": _openai_collect, "anthropic": _anthropic_collect}
