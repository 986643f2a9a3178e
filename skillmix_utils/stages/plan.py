"""Dry runs: the calls a stage would make, per model, with estimated tokens and cost.

Input tokens are estimated from the rendered prompts (characters / 4, the usual rule of thumb
for English); output tokens use each model's `max_tokens`, so output figures are upper bounds.
Only pending work is counted (records already on disk are skipped, as a real run would), but the
llm cache is not consulted, so a re-run may cost less than estimated.
"""
from __future__ import annotations

from dataclasses import dataclass

from skillmix_utils.core import prompts
from skillmix_utils.core.grader_methods import method
from skillmix_utils.core.prompts import method_prompt
from skillmix_utils.llm import estimate_cost
from skillmix_utils.llm.cost import format_usd


def approx_tokens(text: str) -> int:
    """About one token per four characters.

    >>> approx_tokens("x" * 400)
    100
    """
    return max(1, len(text) // 4)


@dataclass
class PlanRow:
    model: str
    purpose: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    batch: bool = False

    def cost(self) -> float | None:

        if self.calls == 0:
            return 0.0
        return estimate_cost(self.model, self.calls, self.input_tokens // self.calls,
                             self.output_tokens // self.calls, batch=self.batch)


class Plan:
    """Rows keyed by (model, purpose); `add` accumulates calls and tokens."""

    def __init__(self, title: str):
        self.title = title
        self.rows: dict[tuple[str, str], PlanRow] = {}
        self.notes: list[str] = []

    def add(self, model: str, purpose: str, calls: int, input_tokens: int, output_tokens: int,
            batch: bool = False) -> None:
        row = self.rows.setdefault((model, purpose), PlanRow(model, purpose, batch=batch))
        row.calls += calls
        row.input_tokens += input_tokens
        row.output_tokens += output_tokens

    def render(self) -> str:
        """The plan as a plain-text table with a total line."""

        lines = [self.title, f"{'model':40s} {'purpose':28s} {'calls':>8s} {'in tok':>10s} "
                             f"{'out tok (max)':>13s} {'est. USD':>10s}"]
        total, unknown = 0.0, False
        for row in self.rows.values():
            c = row.cost()
            unknown |= c is None
            total += c or 0.0
            usd = "unpriced" if c is None else format_usd(c).lstrip("$")
            lines.append(f"{row.model:40s} {row.purpose:28s} {row.calls:8d} {row.input_tokens:10d} "
                         f"{row.output_tokens:13d} {usd:>10s}")
        lines.append(f"estimated total: {format_usd(total)}" + (" + unpriced models" if unknown else "")
                     + " (output tokens at max_tokens: an upper bound; cache not consulted)")
        lines.extend(self.notes)
        return "\n".join(lines)


def plan_generation(plan: Plan, spec, items, catalog, label: str) -> None:
    """Add the two turns of each pending item to `plan`."""

    n_in = 0
    for p in items:
        t1 = approx_tokens(prompts.generation_turn1([catalog.skill(s) for s in p.combination.skills],
                                                    p.combination.topic))
        t2 = approx_tokens(prompts.generation_turn2(p.combination.k))
        n_in += t1 + (t1 + spec.max_tokens + t2)
    plan.add(spec.spec, f"{label}: write (2 turns)", 2 * len(items), n_in,
             2 * len(items) * spec.max_tokens, batch=bool(spec.options.get("batch")))


def plan_grading(plan: Plan, grader, combos, catalog, answer_tokens: int, label: str,
                 rounds: int) -> None:
    """Add `rounds` gradings of one text per combination in `combos` to `plan`."""

    judge = method(grader.method).parser == "yes_no_probabilities"
    n_in = 0
    for c in combos:
        skills = [catalog.skill(s) for s in c.skills]
        n_in += approx_tokens(method_prompt(grader.method, skills, c.topic, ""))
        n_in += answer_tokens * ((c.k + 3) if judge else 1)
    calls = len(combos) * rounds
    if judge:
        plan.add(grader.spec, f"{label}: yes/no judge", calls * 1, n_in, 0)
    else:
        plan.add(grader.spec, f"{label}: grade ({grader.label})", calls, n_in * rounds,
                 calls * grader.max_tokens, batch=bool(grader.options.get("batch")))
