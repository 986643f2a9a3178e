"""How a result is written for a reader: an estimate with its n and 95% interval, the judge
that graded it, a count with its noun. Every table, card and terminal summary writes its
numbers through here, so that no number travels without what it rests on.

    >>> format_estimate(1 / 12, low=0.0149, high=0.3539, n=12, sem=1 / 12)
    '0.08 ± 0.08 (n=12) [0.01, 0.35]'
    >>> print(judge_phrase("smollm2-yes-no", "hf:smollm2-135m-instruct", "yes_no_logprob"))
    graded by smollm2-yes-no (hf:smollm2-135m-instruct, yes_no_logprob): a small local judge asked yes/no per criterion, not the paper's GPT-4
"""
from __future__ import annotations

import math

# What the interval columns of metrics.csv are (core/metrics.skillmix_metrics); said once here
# so that every caption names the same interval.
INTERVAL_NOTE = ("Wilson score where every combination scores 0 or 1 (always so for the two "
                 "ratios), else a bootstrap over combinations")
CELL_NOTE = f"mean ± SEM (n combinations) [95% interval: {INTERVAL_NOTE}]"


def _missing(x) -> bool:
    """None, NaN (a CSV's empty cell) or an empty string."""
    if x is None or x == "":
        return True
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return False


def format_estimate(mean, low=None, high=None, n=None, sem=None, digits: int = 2) -> str:
    """One number as a reader sees it: "mean ± SEM (n=N) [low, high]"; each part is left out
    when it is missing (NaN / None), "–" when the mean is.

    >>> format_estimate(0.0, 0.0, 0.2425, 12)
    '0.00 (n=12) [0.00, 0.24]'
    >>> format_estimate(float("nan"), n=0), format_estimate(0.372, sem=0.048)
    ('–', '0.37 ± 0.05')
    """
    if _missing(mean):
        return "–"
    text = f"{mean:.{digits}f}"
    if not _missing(sem):
        text += f" ± {sem:.{digits}f}"
    if not _missing(n):
        text += f" (n={int(n)})"
    if not (_missing(low) or _missing(high)):
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def row_estimate(row, metric: str, digits: int = 2, with_n: bool = True,
                 with_sem: bool = True, with_interval: bool = True) -> str:
    """`format_estimate` of one metric of a metrics.csv row (a dict or a pandas row): the mean,
    `<metric>_sem`, `n_combinations`, `<metric>_ci_low` / `_ci_high`; a part is left out when
    its `with_` flag is off (a table whose n has a column of its own, say).

    >>> row_estimate({"m": 0.5, "m_ci_low": 0.2, "m_ci_high": 0.8, "n_combinations": 8}, "m",
    ...              with_n=False)
    '0.50 [0.20, 0.80]'
    """
    get = row.get if hasattr(row, "get") else (lambda key, default=None: getattr(row, key, default))
    return format_estimate(get(metric), get(f"{metric}_ci_low") if with_interval else None,
                           get(f"{metric}_ci_high"), get("n_combinations") if with_n else None,
                           get(f"{metric}_sem") if with_sem else None, digits)


def is_local_judge(spec: str | None, method: str | None = None) -> bool:
    """Whether a grader is a model run on this machine (hf:, vllm:, or the yes/no judge), not an
    API model of the GPT-4 class the paper graded with.

    >>> is_local_judge("hf:smollm2-135m-instruct"), is_local_judge("openai:gpt-4-0613")
    (True, False)
    """
    return str(spec or "").startswith(("hf:", "vllm:")) or method == "yes_no_logprob"


def judge_phrase(grader, spec: str | None = None, method: str | None = None,
                 rounds: int | None = None) -> str:
    """"graded by <grader> (<model>, <method>[, N rounds])", and, for a local judge, that it is
    not the paper's GPT-4 (a reader must never take its numbers for the paper's).

    >>> judge_phrase("gpt-4", "openai:gpt-4-0613", "table")
    'graded by gpt-4 (openai:gpt-4-0613, table)'
    """
    details = ", ".join([str(x) for x in (spec, method) if not _missing(x)]
                        + ([plural(int(rounds), "round")] if not _missing(rounds) else []))
    text = f"graded by {grader}" + (f" ({details})" if details else "")
    if method == "yes_no_logprob":
        return text + ": a small local judge asked yes/no per criterion, not the paper's GPT-4"
    if is_local_judge(spec, method):
        return text + ": a local model, not the paper's GPT-4"
    return text


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """A count with its noun: 1 round, 2 rounds.

    >>> plural(1, "round"), plural(3, "text"), plural(1, "combination"), plural(2, "is", "are")
    ('1 round', '3 texts', '1 combination', '2 are')
    """
    return f"{n} {noun if n == 1 else (nouns or noun + 's')}"
