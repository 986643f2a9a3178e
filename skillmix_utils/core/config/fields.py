"""The rules config fields share: presets, safe names, provider ranges, URLs, the strict base model."""
from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
)

Pool = Literal["train", "held_out", "all"]
Preset = Literal["improved", "reference"]

# Two ways to run the study (docs/protocol.md §10). "reference" reproduces the Skill-Mix
# reference code on the wire and in the arithmetic; "improved" is skillmix's own. A preset fills
# every option it names that the config leaves out; an option the config gives wins.
SCORING_PRESETS: dict[str, dict] = {
    "improved": {"explicit_name_rule": True, "explicit_name_match": "whole_words",
                 "sentence_counter": "reference", "unreadable": "exclude"},
    "reference": {"explicit_name_rule": False, "explicit_name_match": "reference",
                  "sentence_counter": "reference", "unreadable": "zero"},
}
# The protocol options live where they act: on the models (system_message to API models,
# answer_rule of writers), on the graders (skill_criterion of point_earned graders) and on the
# catalog (whitespace); `protocol.preset` fills them (`apply_protocol`).
REFERENCE_SYSTEM_MESSAGE = "You are a helpful assistant."
PROTOCOL_PRESETS: dict[str, dict] = {
    "improved": {"system_message": None, "answer_rule": "improved",
                 "point_earned_criterion": "Correctly illustrates", "catalog_whitespace": "stripped"},
    "reference": {"system_message": REFERENCE_SYSTEM_MESSAGE, "answer_rule": "reference",
                  "point_earned_criterion": "Contains", "catalog_whitespace": "as_written"},
}
API_KINDS = ("openai:", "anthropic:")      # models reached through a provider's API


def as_section(value) -> dict:
    """A `scoring` / `protocol` value as a mapping: a bare string names the preset
    (`scoring: reference` is `{preset: reference}`)."""
    return {"preset": value} if isinstance(value, str) else dict(value or {})


class StrictModel(BaseModel):
    # Unknown keys are errors: a typo in a config must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid")


# A name that becomes a folder or file name (a study's outputs/<name>, a sub-sample's mix file, a
# student's part of a record id): one path component, so that nothing lands outside its folder.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def safe_name(v: str) -> str:
    """`v` if it is one safe path component; else a ValueError that says what is allowed."""
    if not SAFE_NAME.match(v or ""):
        raise ValueError("must be one folder name: letters, digits, '.', '_' or '-', starting "
                         "with a letter or digit, at most 100 characters (no '/', no '..', not "
                         "empty)")
    return v


# What providers accept: OpenAI (and servers speaking its API, local models) temperature 0-2,
# Anthropic 0-1; at least one output token.
TEMPERATURE_RANGE = {"anthropic": (0.0, 1.0)}
DEFAULT_TEMPERATURE_RANGE = (0.0, 2.0)
# Backend options with a meaning the config can check (llm/__init__.get_backend): (minimum, kind).
NUMERIC_OPTIONS = {"timeout": (0.0, float, False), "max_retries": (0, int, True),
                   "max_retry_after": (0.0, float, True), "circuit_breaker": (0, int, True),
                   "rpm": (0.0, float, False), "tpm": (0.0, float, False),
                   "malformed_retries": (0, int, True)}


def check_url(v: str) -> str:
    """`v` if it is an http(s) URL with a host and a port in range; the error never repeats it."""
    try:
        parts = urlsplit(v)
        port = parts.port                     # raises for a port out of 0-65535 or not a number
    except ValueError:
        raise ValueError("is not a URL with a valid port (1-65535), e.g. "
                         "http://localhost:8000/v1") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("needs a scheme and a host, e.g. http://localhost:8000/v1 or "
                         "https://api.openai.com/v1")
    if port == 0:
        raise ValueError("port 0 is not a port a server listens on (1-65535)")
    return v
