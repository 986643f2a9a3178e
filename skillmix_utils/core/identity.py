"""What a stored text or grading was made from, as one short digest (docs/protocol.md §9).

A stored result is reused only when it was made the same way. The identity of a **text** covers
the writer (backend spec and `writer_identity`: weights fingerprint, adapter, dtype,
quantization, engine options or endpoint, the same description the response cache keys on),
every sampling setting that changes the output (temperature, max_tokens, the round's seed,
output options, a system message), the prompt version, the two user turns exactly as sent,
which hold the combination and the catalog entries shown (name, definition, example), and the
rule that reads the answer from the reply when it is not the default. The identity of a
**grading** covers the grader (spec and `writer_identity`), its method, the rendered prompt
(which holds the text graded) and its sampling settings (system message included) and round
seed.

Options that only change how a request travels (batching, rate limits, timeouts, retries,
progress bars, prices, cache location) are left out, so switching to the batch API or raising
a rate limit does not redo a study.

    >>> from skillmix_utils.core.config import ModelSpec
    >>> m = ModelSpec(spec="openai:gpt-4o")
    >>> a = text_identity("openai:gpt-4o", writer_identity(m), m, 0, "t1", "t2")
    >>> b = text_identity("openai:gpt-4o", writer_identity(m), m.model_copy(update={"temperature": 1.0}), 0, "t1", "t2")
    >>> c = text_identity("openai:gpt-4o", writer_identity(m), m.model_copy(update={"options": {"rpm": 5}}), 0, "t1", "t2")
    >>> other = m.model_copy(update={"base_url": "http://localhost:8000/v1"})
    >>> d = text_identity("openai:gpt-4o", writer_identity(other), other, 0, "t1", "t2")
    >>> a == b, a == c, a == d, len(a)
    (False, True, False, 16)
"""
from __future__ import annotations

import hashlib
import json

from skillmix_utils.core.model_identity import model_identity
from skillmix_utils.core.prompts import PROMPT_VERSION

# Options of `llm.get_backend` that do not change what a model writes.
TRANSPORT_OPTIONS = frozenset({
    "batch", "rpm", "tpm", "timeout", "max_retries", "progress", "prices", "malformed_retries",
    "poll_interval", "batch_timeout", "batch_size", "concurrency", "cache_dir", "use_cache",
    # vllm: the context the engine reserves for, set by the evaluation from its own prompts
    "max_model_len"})


def digest(payload: dict) -> str:
    """A 64-bit hex digest of a JSON-able payload (keys sorted)."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def output_options(options: dict) -> dict:
    """The options that can change a model's output.

    >>> output_options({"batch": True, "dtype": "bfloat16", "rpm": 60})
    {'dtype': 'bfloat16'}
    """
    return {k: v for k, v in sorted((options or {}).items()) if k not in TRANSPORT_OPTIONS}


def sampling_of(spec, seed: int) -> dict:
    """The request settings of a model spec that shape its output, with the round's seed (and
    its system message, when it sends one: without one, identities are what they always were)."""
    out = {"temperature": spec.temperature, "max_tokens": spec.max_tokens, "seed": seed,
           "options": output_options(spec.options)}
    if getattr(spec, "system_message", None) is not None:
        out["system_message"] = spec.system_message
    return out


def writer_identity(spec, adapter: str | None = None) -> dict:
    """`model_identity` of a config's model spec (a ModelSpec or GraderSpec), plus adapter."""
    return model_identity(spec.spec, adapter=adapter, base_url=spec.base_url, options=spec.options)


def text_identity(writer: str, made: dict, spec, seed: int, turn1: str, turn2: str,
                  prompt_version: str | None = None) -> str:
    """The identity of a text written by `writer`, made as `made` (`writer_identity`), with
    `spec`'s settings."""

    payload = {"kind": "text", "writer": writer, "made": made,
               "sampling": sampling_of(spec, seed),
               "prompt_version": prompt_version or PROMPT_VERSION,
               "turns": [turn1, turn2]}
    if getattr(spec, "answer_rule", "improved") != "improved":
        payload["answer_rule"] = spec.answer_rule     # another rule reads another answer
    return digest(payload)


def grading_identity(grader, seed: int, prompt: str) -> str:
    """The identity of one grading round: grader spec and how it is made, method, prompt,
    sampling and seed."""
    return digest({"kind": "grading", "grader": grader.spec, "made": writer_identity(grader),
                   "method": grader.method,
                   "sampling": sampling_of(grader, seed), "prompt": prompt})
