"""Dry runs: the calls a stage would make, per model, with estimated tokens and cost.

Input tokens are estimated from the rendered prompts (characters / 4, the usual rule of thumb
for English); output tokens use each model's `max_tokens`, so output figures are upper bounds.
Only pending work is counted, found by the same functions the real run uses (records already on
disk and made the way the config makes them now are skipped; gradings owed are
`grade.pending_gradings`'s). The llm cache is not consulted, but a request made the same way
as one already counted in the plan (`reuse_key`: the same model asked the same thing) is counted
once: the response cache answers the repeat. A grid's runs share one `Plan.seen`, so the base
students every run evaluates are priced once, not once per run.
"""
from __future__ import annotations

from dataclasses import dataclass

from skillmix_utils.core.grader_methods import method
from skillmix_utils.core.identity import digest, sampling_of
from skillmix_utils.core.prompts import method_prompt
from skillmix_utils.llm.cost import estimate_cost, format_usd
from skillmix_utils.llm.sdk_base import DEFAULT_MAX_RETRY_AFTER, DEFAULT_TIMEOUT

API_KINDS = ("openai", "anthropic", "openai-compatible")


def approx_tokens(text: str) -> int:
    """About one token per four characters.

    >>> approx_tokens("x" * 400)
    100
    """
    return max(1, len(text) // 4)


def reuse_key(spec, identity: str | None) -> tuple | None:
    """What makes two planned requests one: the same model at the same endpoint asked for the
    same `identity` (a text's or a grading's, identity.py), which the response cache answers
    the second time. None (never shared) without an identity or with the model's cache off.

    >>> from skillmix_utils.core.config import ModelSpec
    >>> reuse_key(ModelSpec(spec="openai:gpt-4o"), "ab12")
    ('openai:gpt-4o', None, 'ab12')
    >>> reuse_key(ModelSpec(spec="openai:gpt-4o", options={"use_cache": False}), "ab12") is None
    True
    """
    if identity is None or spec.options.get("use_cache") is False:
        return None
    return (spec.spec, spec.base_url, identity)


def grading_keys(grader, seed: int, text_keys) -> list:
    """The reuse keys of gradings (round seed `seed`) of texts not written yet, known by their
    own reuse keys (`text_keys`, None where not shared): the same text (made the same way, so
    the cache returns the same words) graded the same way."""
    how = reuse_key(grader, digest({"kind": "grading", "grader": grader.spec,
                                    "method": grader.method, "sampling": sampling_of(grader, seed)}))
    return [None if how is None or k is None else (*how, k) for k in text_keys]


@dataclass
class PlanRow:
    model: str
    purpose: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    batch: bool = False
    repeats: int = 0              # calls made the same way as one counted before: not counted
    repeat_input_tokens: int = 0
    repeat_output_tokens: int = 0

    def cost(self) -> float | None:
        return self._cost(self.calls, self.input_tokens, self.output_tokens)

    def repeat_cost(self) -> float | None:
        return self._cost(self.repeats, self.repeat_input_tokens, self.repeat_output_tokens)

    def _cost(self, calls: int, input_tokens: int, output_tokens: int) -> float | None:
        if calls == 0:
            return 0.0
        return estimate_cost(self.model, calls, input_tokens // calls, output_tokens // calls,
                             batch=self.batch)


class Plan:
    """Rows keyed by (model, purpose); `add` accumulates calls and tokens. `seen` holds the reuse
    keys already counted (pass one set to the plans of a grid's runs)."""

    def __init__(self, title: str, seen: set | None = None):
        self.title = title
        self.rows: dict[tuple[str, str], PlanRow] = {}
        self.notes: list[str] = []
        self.seen = set() if seen is None else seen

    def add(self, model: str, purpose: str, calls: int, input_tokens: int, output_tokens: int,
            batch: bool = False, key=None) -> None:
        """Count requests; with a `key` already seen they are repeats the cache answers."""
        row = self.rows.setdefault((model, purpose), PlanRow(model, purpose, batch=batch))
        if key is not None and key in self.seen:
            row.repeats += calls
            row.repeat_input_tokens += input_tokens
            row.repeat_output_tokens += output_tokens
            return
        if key is not None:
            self.seen.add(key)
        row.calls += calls
        row.input_tokens += input_tokens
        row.output_tokens += output_tokens

    def note_limits(self, spec) -> None:
        """One line per API model (once): the request timeout, the longest Retry-After waited
        for and, for a grader, how often an unreadable reply is asked again."""
        if spec.spec.split(":", 1)[0] not in API_KINDS:
            return
        timeout = spec.options.get("timeout") or DEFAULT_TIMEOUT
        wait = spec.options.get("max_retry_after")
        wait = DEFAULT_MAX_RETRY_AFTER if wait is None else wait
        line = (f"{spec.spec}: request timeout {timeout:g} s per attempt (options.timeout), "
                f"Retry-After waited up to {wait:g} s (options.max_retry_after)")
        if hasattr(spec, "parse_retries"):
            line += (f", an unreadable grading asked again up to {spec.parse_retries} times "
                     f"(parse_retries)")
        if line not in self.notes:
            self.notes.append(line)

    def total(self) -> tuple[float, bool]:
        """(estimated dollars of the counted calls, whether some model has no price)."""
        costs = [row.cost() for row in self.rows.values()]
        return sum(c or 0.0 for c in costs), any(c is None for c in costs)

    def render(self) -> str:
        """The plan as a plain-text table with a total line.

        The text columns are as wide as their longest entry, so a row stays one line and the
        numbers stay in their columns in a terminal and in a notebook's output (a fixed 40 + 28
        wrapped the cost column of "student mistral-7b-base: write (2 turns)" in JupyterLab).
        """
        rows = list(self.rows.values())
        mw = max([len("model")] + [len(r.model) for r in rows])
        pw = max([len("purpose")] + [len(r.purpose) for r in rows])
        lines = [self.title, f"{'model':{mw}s} {'purpose':{pw}s} {'calls':>8s} {'in tok':>10s} "
                             f"{'out tok (max)':>13s} {'est. USD':>10s}"]
        for row in rows:
            c = row.cost()
            usd = "unpriced" if c is None else format_usd(c).lstrip("$")
            lines.append(f"{row.model:{mw}s} {row.purpose:{pw}s} {row.calls:8d} {row.input_tokens:10d} "
                         f"{row.output_tokens:13d} {usd:>10s}")
        total, unknown = self.total()
        lines.append(f"estimated total: {format_usd(total)}" + (" + unpriced models" if unknown else "")
                     + " (output tokens at max_tokens: an upper bound; cache not consulted)")
        for row in self.rows.values():
            if row.repeats:
                c = row.repeat_cost()
                lines.append(f"{row.model} {row.purpose}: {row.repeats} more calls repeat requests "
                             "counted before, here or in an earlier grid run (the response cache "
                             f"answers them): {'unpriced' if c is None else format_usd(c)} not counted")
        lines.extend(self.notes)
        return "\n".join(lines)


def plan_generation(plan: Plan, writer, items, label: str, shared: bool = True) -> dict:
    """Add the two turns of each pending item to `plan`, as `writer` (`generate.Writer`) would
    send them. Returns each item's reuse key ({id: key}; None for all when not `shared`, e.g. a
    student whose weights do not exist yet), which its gradings' keys derive from."""
    spec = writer.spec
    plan.note_limits(spec)
    keys = {}
    for p in items:
        turn1, turn2 = writer.turns(p)
        t1 = approx_tokens(turn1)
        keys[p.id] = reuse_key(spec, writer.identity(p)) if shared else None
        plan.add(spec.spec, f"{label}: write (2 turns)", 2, t1 + (t1 + spec.max_tokens + approx_tokens(turn2)),
                 2 * spec.max_tokens, batch=bool(spec.options.get("batch")), key=keys[p.id])
    return keys


def plan_grading(plan: Plan, grader, asks, catalog, answer_tokens: int, label: str) -> None:
    """Add one grading request per (combination, answer, key) of `asks` to `plan`. `answer` is
    None for a text not written yet (its length estimated at `answer_tokens`); `key` is the
    request's reuse key or None."""
    judge = method(grader.method).parser == "yes_no_probabilities"
    plan.note_limits(grader)
    skills: dict = {}        # catalog entries per skill set (a lookup is not free)
    bare: dict = {}          # tokens of the prompt without a text, per combination
    for c, answer, key in asks:
        if c.skills not in skills:
            skills[c.skills] = [catalog.skill(s) for s in c.skills]
        if answer is not None:
            n_in = approx_tokens(method_prompt(grader.method, skills[c.skills], c.topic, answer))
        else:
            if (c.skills, c.topic) not in bare:
                bare[c.skills, c.topic] = approx_tokens(method_prompt(grader.method, skills[c.skills],
                                                               c.topic, ""))
            n_in = bare[c.skills, c.topic] + answer_tokens * ((c.k + 3) if judge else 1)
        if judge:
            plan.add(grader.spec, f"{label}: yes/no judge", 1, n_in, 0, key=key)
        else:
            plan.add(grader.spec, f"{label}: grade ({grader.label})", 1, n_in, grader.max_tokens,
                     batch=bool(grader.options.get("batch")), key=key)
