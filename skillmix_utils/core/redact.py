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
    re.compile(r"(?i)()\bsk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)([a-z][a-z0-9+.\-]*://)[^/\s:@]+:[^/\s@]+(?=@)"),   # user:password@host
]
# What a credential in a config looks like (config.py refuses it): provider key shapes, auth
# schemes, and passwords inside URLs. Names of fields that hold credentials, anywhere.
CREDENTIAL_VALUES = [
    ("a provider API key (sk-...)", re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}")),
    ("a Hugging Face token (hf_...)", re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
    ("an API key (AKIA.../AIza.../gsk_.../xai-...)",
     re.compile(r"\b(AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_\-]{35}|gsk_[A-Za-z0-9]{20,}|xai-[A-Za-z0-9]{20,})")),
    ("an Authorization value (Bearer/Basic ...)", re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/\-]{8,}=*")),
    ("an auth header", re.compile(r"(?i)\b(authorization|x-api-key|api-key)\s*[:=]\s*\S")),
    ("a password in a URL (user:password@host)", re.compile(r"(?i)[a-z][a-z0-9+.\-]*://[^/\s:@]+:[^/\s@]+@")),
]
CREDENTIAL_NAMES = re.compile(
    r"(?i)^(authorization|proxy-authorization|x-api-key|api[-_]?key|x-goog-api-key|cookie|"
    r"password|passwd|secret|client[-_]?secret|(access|auth|bearer|id|refresh)[-_]?token|token)$")
NOT_IN_A_CONFIG = ("API keys are read from the environment only (OPENAI_API_KEY, "
                   "ANTHROPIC_API_KEY), never from a config, which is copied into outputs")


# A URL query parameter named like a credential (`?api_key=...`, `&access_token=...`, `?key=`).
CREDENTIAL_PARAM = re.compile(r"(?i)^(.*[-_])?(key|apikey|token|secret|password|passwd|auth|"
                              r"authorization|sig|signature|credentials?)$")
_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s'\"<>]+")
# Provider prefixes: the body after one is the secret part, refused also without its prefix.
_KEY_PREFIX = re.compile(
    r"(?i)^(sk-(proj-|ant-(api\d+-|admin\d+-)?|svcacct-|admin-)?|hf_|gsk_|xai-)")
FRAGMENT = 16   # this many characters of a key's body in a row are that key


def holds_env_secret(text: str) -> bool:
    """True when `text` holds a key from the environment (SECRET_ENV) in any form: whole, without
    its provider prefix, case-changed, URL-encoded, or any FRAGMENT characters of it in a row.

    >>> os.environ["HF_TOKEN"] = "hf_" + "Ab3dEf6hIj9kLm2nOp5q"
    >>> [holds_env_secret(t) for t in ("note ab3def6hij9klm2nop5q", "hf_Ab3d", "no key")]
    [True, False, False]
    >>> del os.environ["HF_TOKEN"]
    """
    low = text.lower()
    for secret in (os.environ.get(v) for v in SECRET_ENV):
        if not secret or len(secret) < 8:
            continue
        body = _KEY_PREFIX.sub("", secret)
        forms = {v for f in (secret, body) if len(f) >= 8 for v in _variants(f)}
        if any(f in low for f in forms):
            return True
        b = body.lower()
        if any(b[i:i + FRAGMENT] in low for i in range(len(b) - FRAGMENT + 1)):
            return True
    return False


def _credential_param(text: str) -> str | None:
    """The name of the first query parameter named like a credential in a URL inside `text`."""
    from urllib.parse import parse_qsl, urlsplit

    for m in _URL.finditer(text):
        try:
            parts = urlsplit(m.group(0))
        except ValueError:
            continue
        for name, _ in parse_qsl(parts.query + "&" + parts.fragment, keep_blank_values=True):
            if CREDENTIAL_PARAM.match(name):
                return name[:40]
    return None


def _looks_like_credential(text: str) -> str | None:
    """What a string looks like when it holds a credential (never the string itself), or None."""
    for what, pat in CREDENTIAL_VALUES:
        if pat.search(text):
            return f"looks like {what}"
    if holds_env_secret(text):
        return "holds the value of an API key variable (in some form)"
    param = _credential_param(text)
    if param:
        return f"a URL with a query parameter named like a credential ({param!r})"
    return None


def find_credential(tree, field: str = "") -> tuple[str, str] | None:
    """(dotted field, what it looks like) of the first credential-looking value (or field name)
    in a config tree, or None. The value itself is never repeated, nor a field name that looks
    like a key (the field of its mapping is named instead).

    >>> find_credential({"data": {"teacher": {"options": {"default_headers": {"Authorization": "x"}}}}})
    ('data.teacher.options.default_headers.Authorization', 'a credential field; API keys are read from the environment only (OPENAI_API_KEY, ANTHROPIC_API_KEY), never from a config, which is copied into outputs')
    >>> find_credential({"base_url": "https://u:pw@host/v1"})[0], find_credential({"x": ["ok"]})
    ('base_url', None)
    >>> find_credential({"base_url": "http://h/v1?api_key=abc"})[1][:60]
    "a URL with a query parameter named like a credential ('api_k"
    >>> find_credential({"options": {"sk-proj-abcdefghijklmnopqrstu": 1}})[:1]
    ('options',)
    """
    if isinstance(tree, dict):
        for k, v in tree.items():
            what = _looks_like_credential(str(k))
            if what:
                return field or "(top level)", f"a field name there {what}; {NOT_IN_A_CONFIG}"
            here = f"{field}.{k}" if field else str(k)
            if CREDENTIAL_NAMES.match(str(k)) and v not in (None, "", {}, []):
                return here, f"a credential field; {NOT_IN_A_CONFIG}"
            found = find_credential(v, here)
            if found:
                return found
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            found = find_credential(v, f"{field}.{i}" if field else str(i))
            if found:
                return found
    elif isinstance(tree, str):
        what = _looks_like_credential(tree)
        if what:
            return field, f"{what}; {NOT_IN_A_CONFIG}"
    return None


def _variants(secret: str) -> set[str]:
    """The forms a provider or a URL may echo a key in: as is, case-changed, URL-encoded."""
    from urllib.parse import quote, quote_plus

    return {v.lower() for v in (secret, quote(secret, safe=""), quote_plus(secret))}


def _mask_fragments(text: str, secret: str, min_len: int = 8) -> str:
    """Replace every run of >= min_len characters that occurs inside `secret` (any case, or
    URL-encoded) by ***: catches a key echoed only as its suffix or with its middle starred.

    >>> _mask_fragments("key ...ABCD1234EFGH was refused", "sk-test-abcd1234efgh")
    'key ...*** was refused'
    """
    low, variants = text.lower(), _variants(secret)
    out, i = [], 0
    while i < len(text):
        n = 0
        while i + n < len(text) and any(low[i:i + n + 1] in v for v in variants):
            n += 1
        if n >= min_len:
            out.append("***")
            i += n
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def redact(text: object, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """Return `text` with API keys and auth headers replaced by ***.

    >>> redact("Error: Authorization: Bearer sk-abc123456789 failed")
    'Error: Authorization: *** failed'
    >>> redact("key=s3cr3t-value", ["s3cr3t-value"])
    'key=***'
    >>> redact("got S3CR3T+VALUE, ...cr3t+value and s3cr3t%2Bvalue", ["s3cr3t+value"])
    'got ***, ...*** and ***'
    >>> redact("https://me:hunter22@host/v1")
    'https://***@host/v1'
    """
    out = str(text)
    known = [s for s in (*secrets, *(os.environ.get(v) for v in SECRET_ENV)) if s and len(s) >= 4]
    for s in sorted(set(known), key=len, reverse=True):
        out = out.replace(s, "***")
        if len(s) >= 8:
            out = _mask_fragments(out, s)
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
