"""A local grader that a small model can be: one yes/no question per rubric criterion.

A 135M-parameter model cannot be trusted to write the rubric table of docs/protocol.md §4, so `hf:`
graders with `method: yes_no_logprob` are asked each of the k + 3 criteria separately
(prompt: data/prompts/<version>/judge_yes_no.txt) and the point is read from the next-token
probabilities: 1 when P("Yes") / (P("Yes") + P("No")) >= 0.5, else 0. The probabilities are
kept as the grading's raw reply, and the method is recorded as "yes_no_logprob" in every
record and table, so these gradings are never mistaken for the published grader's.

The judgement is deterministic (no sampling), so it is made once per text: the grader's
`rounds` setting does not apply to it (three identical rounds would only fake a majority vote).
"""
from __future__ import annotations

import json

from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.prompts import judge_prompts as render
from skillmix_utils.core.records import Grading, Usage

METHOD = "yes_no_logprob"
THRESHOLD = 0.5


def judge_prompts(skills, topic: str, answer: str) -> list[str]:
    """The k + 3 yes/no questions for one text, in rubric order (`prompts.judge_prompts`)."""

    return render(skills, topic, answer)


def check_backend(backend, spec: str) -> None:
    """Refuse a yes_no_logprob grader whose backend cannot read next-token probabilities."""
    if not callable(getattr(backend, "yes_no_probabilities", None)):
        raise SkillmixError(f"method yes_no_logprob needs a local hf: grader, not {spec!r}",
                            field="graders.method")


def judge(backend, label: str, items: list[tuple[list, str, str]]) -> list[Grading]:
    """Grade `items` (skills, topic, answer) with yes/no probabilities; one Grading each."""
    questions, spans = [], []
    for skills, topic, answer in items:
        qs = judge_prompts(skills, topic, answer or "")
        spans.append((len(questions), len(questions) + len(qs)))
        questions.extend(qs)
    try:
        probs, tokens = backend.yes_no_probabilities(
            [[{"role": "user", "content": q}] for q in questions], with_tokens=True)
    except Exception as exc:  # a local failure is recorded and retried, never scored 0
        return [Grading(grader=label, method=METHOD, round=0, status="error",
                        error=f"{type(exc).__name__}: {exc}") for _ in items]
    out = []
    for (a, b) in spans:
        p = [float(x) for x in probs[a:b]]
        out.append(Grading(
            grader=label, method=METHOD, round=0, prompt=questions[a],
            raw_reply=json.dumps({"p_yes": [round(x, 6) for x in p], "threshold": THRESHOLD}),
            points=[1.0 if x >= THRESHOLD else 0.0 for x in p], status="ok",
            # The k + 3 prompts read (their shared beginning is computed once, but each prompt
            # is what the judge reads); nothing is written, so no output token.
            usage=Usage(input_tokens=sum(tokens[a:b]))))
    return out
