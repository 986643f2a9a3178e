"""Keep secrets out of everything skillmix writes: error strings, logs, caches, records.

Keys are read from the environment only and live in memory; any text that might echo one
(an SDK error, a server's error body) goes through `redact` before it is stored or logged.
"""
from __future__ import annotations

import os
import re

SECRET_ENV = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "HF_TOKEN")

_PATTERNS = [
    re.compile(r"(?i)(authorization\s*[:=]\s*['\"]?)(bearer\s+)?[^\s'\",}]+"),
    re.compile(r"(?i)(x-api-key\s*['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),
    re.compile(r"()\bsk-[A-Za-z0-9_\-]{8,}"),
]


def redact(text: object, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """Return `text` with API keys and auth headers replaced by ***.

    >>> redact("Error: Authorization: Bearer sk-abc123456789 failed")
    'Error: Authorization: *** failed'
    >>> redact("key=s3cr3t-value", ["s3cr3t-value"])
    'key=***'
    """
    out = str(text)
    known = [s for s in (*secrets, *(os.environ.get(v) for v in SECRET_ENV)) if s and len(s) >= 4]
    for s in sorted(set(known), key=len, reverse=True):
        out = out.replace(s, "***")
    for pat in _PATTERNS:
        out = pat.sub(lambda m: m.group(1) + "***", out)
    return out.replace("***Bearer ***", "***").replace("Bearer ***", "***")


def describe_error(exc: BaseException, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """A one-line, redacted description of an exception, safe to store.

    >>> describe_error(ValueError("bad  \\n body"))
    'ValueError: bad body'
    """
    msg = " ".join(str(exc).split())
    return redact(f"{type(exc).__name__}: {msg}"[:2000], secrets)
