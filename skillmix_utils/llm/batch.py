"""OpenAI Batch and Anthropic Message Batches: submit, poll, collect, resume after a restart.

`get_backend(spec, batch=True)` routes cache misses here. Each request's custom id is its cache
key, and the batch id with its keys is saved in the cache database at submission, so a process
that is restarted finds its open batches and polls them instead of paying again. Collected
replies land in the same response cache as ordinary calls, priced at the batch discount.
Items still unfinished after `batch_timeout` seconds come back with
`error="batch_pending: <id>"`; call again later to collect them.

A saved batch the provider no longer knows (404: deleted, past its retention, another
organisation's key) is marked lost in the cache and its requests are submitted again in the
same call, with a warning; if the new batch is lost too, its items fail (`batch_lost: <id>`)
and the next call submits them again. Never does a batch stay "submitted" for ever.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import time

from skillmix_utils.core.redact import describe_error
from skillmix_utils.llm.failures import status_of
from skillmix_utils.llm.messages import BUDGET_EXCEEDED, Job, Reply

log = logging.getLogger("skillmix.llm")

OPENAI_OPEN = ("validating", "in_progress", "finalizing", "cancelling")
MAX_BATCH = 50_000  # both providers' per-batch request limit (OpenAI: 50,000; Anthropic: 100,000)


class BatchLost(Exception):
    """The provider answers 404 for a batch we saved: it will never deliver its results."""


async def run_batch(backend, jobs: list[Job], temperature, max_tokens) -> dict[str, dict]:
    """Get every job's reply through the provider's batch API; {key: outcome}."""
    by_key = {j.key: j for j in jobs}
    out: dict[str, dict] = {}
    async with backend._session():
        saved = backend.cache.pending_batches(sorted(by_key), backend.kind)
        covered = {k for ks in saved.values() for k in ks}
        fresh = await _submit(backend, [j for j in jobs if j.key not in covered], temperature,
                              max_tokens, out)
        deadline = None if backend.batch_timeout is None else time.monotonic() + backend.batch_timeout
        # a saved batch that turns out lost is submitted again (once); a fresh one is not
        again = {bid: [by_key[k] for k in keys if k in by_key] for bid, keys in saved.items()}
        found = await asyncio.gather(
            *(_follow(backend, bid, keys, deadline, again.get(bid), temperature, max_tokens)
              for bid, keys in {**saved, **fresh}.items()))
    for part in found:
        out.update((k, v) for k, v in part.items() if k in by_key)
    return out


async def _submit(backend, jobs: list[Job], temperature, max_tokens,
                  out: dict[str, dict]) -> dict[str, list[str]]:
    """Submit `jobs` in batches within the budget; {batch id: keys}. Items not submitted get
    their error in `out`; a refused key raises here, before any polling."""
    provider = backend.kind
    new, reserved = [], 0.0
    for job in jobs:
        _, usd = backend._estimate(job, max_tokens)
        if backend._over_budget(usd):
            out[job.key] = {"error": BUDGET_EXCEEDED}
            continue
        backend._reserved += usd
        reserved += usd
        new.append(job)
    submitted: dict[str, list[str]] = {}
    try:
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
            submitted[bid] = [j.key for j in chunk]
    finally:
        backend._reserved -= reserved
    return submitted


async def _follow(backend, bid: str, keys: list[str], deadline, again: list[Job] | None,
                  temperature, max_tokens) -> dict[str, dict]:
    """Outcomes of one batch's keys; a lost batch's `again` jobs go in a new batch."""
    try:
        collected = await _wait_and_collect(backend, bid, deadline)
    except BatchLost as lost:
        backend.cache.close_batch(bid, f"lost: {lost}"[:200])
        if not again:
            log.warning("%s: batch %s: %s; its %d requests failed and the next call submits "
                        "them again", backend.spec, bid, lost, len(keys))
            return {k: {"error": f"batch_lost: {bid}"} for k in keys}
        log.warning("%s: batch %s: %s; its %d requests are submitted again", backend.spec, bid,
                    lost, len(again))
        out: dict[str, dict] = {}
        new = await _submit(backend, again, temperature, max_tokens, out)
        for part in await asyncio.gather(*(_follow(backend, b, ks, deadline, None, temperature,
                                                   max_tokens) for b, ks in new.items())):
            out.update(part)
        return out
    if collected is None:
        return {k: {"error": f"batch_pending: {bid}"} for k in keys}
    status, results = collected
    return {k: results.get(k) or {"error": f"batch_ended: {bid} ended {status} with no result "
                                           "for this request; call again to submit it again"}
            for k in keys}


async def _wait_and_collect(backend, bid: str, deadline) -> tuple[str, dict] | None:
    """Poll one batch until it ends, then store its results: (status, {key: outcome}); None
    while it is still running (the deadline passed, or polling failed: a later call resumes).
    Raises BatchLost when the provider answers 404 for it."""
    provider = backend.kind
    try:
        while True:
            status = await STATUS[provider](backend, bid)
            if status is not None:
                break
            if deadline is not None and time.monotonic() >= deadline:
                log.info("%s: batch %s still running; call again to collect", backend.spec, bid)
                return None
            await asyncio.sleep(backend.poll_interval)
        results = await COLLECT[provider](backend, bid)
    except Exception as exc:  # noqa: BLE001 - leave the batch open: a later call resumes
        err = describe_error(exc, backend._secrets)
        if status_of(exc) == 404:
            raise BatchLost(f"the provider no longer knows it ({err[:200]})") from exc
        log.warning("%s: batch %s: %s", backend.spec, bid, err)
        return None
    out = {}
    for key, reply in results.items():
        if isinstance(reply, Reply):
            out[key] = backend._record(Job(0, 0, key, [], None), reply, batch=True)
        else:
            out[key] = {"error": reply}
    backend.cache.close_batch(bid, f"collected:{status}")
    return status, out


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
