"""Grading methods as data: which prompt a method sends, how its reply is read, how many rounds.

The registry is `data/grader_methods.yaml` (docs/protocol.md §4); code asks it instead of
testing method names, so a new method is a new entry (and, if it reads replies differently, a
new parser name).

    >>> method("table").prompt, method("table").parser, method("yes_no_logprob").rounds
    ('grading_table', 'rubric_reply', 'one')
    >>> from types import SimpleNamespace as S
    >>> rounds_of(S(method="table", rounds=3)), rounds_of(S(method="yes_no_logprob", rounds=3))
    ([0, 1, 2], [0])
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

PARSERS = ("rubric_reply", "yes_no_probabilities")


@dataclass(frozen=True)
class Method:
    name: str
    prompt: str
    parser: str
    rounds: str                  # "config" | "one"
    needs: str | None = None
    description: str = ""


@lru_cache(maxsize=1)
def methods() -> dict[str, Method]:
    """Every registered method, by name."""
    doc = yaml.safe_load(resources.files("skillmix_utils").joinpath(
        "data", "grader_methods.yaml").read_text(encoding="utf-8"))
    out = {}
    for name, entry in doc.items():
        m = Method(name=name, **entry)
        if m.parser not in PARSERS or m.rounds not in ("config", "one"):
            raise ValueError(f"data/grader_methods.yaml: {name}: bad parser or rounds")
        out[name] = m
    return out


def method(name: str) -> Method:
    """The registry entry of `name` (ValueError names the known ones)."""
    try:
        return methods()[name]
    except KeyError:
        raise ValueError(f"unknown grading method {name!r}: known {', '.join(methods())}") from None


def rounds_of(grader) -> list[int]:
    """The rounds a grader is asked: its `rounds`, or one for a deterministic method."""
    return [0] if method(grader.method).rounds == "one" else list(range(grader.rounds))
