"""Bounded parsing (docs/protocol.md §4): every reader of model text runs in linear time and
never raises. A 2 KB grader reply of "Points earned" and spaces used to take longer than 20 s
(812 characters: 85 s) through catastrophic regex backtracking, and failed parses are read again
on every run. The limits below are generous (the machine is shared); a backtracking parser
misses them by orders of magnitude. `python tests/core/test_parse_bounds.py` prints the timings
(CPU time per call)."""
from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skillmix_utils.core.answers import extract_answer_with_rule
from skillmix_utils.core.grading import count_sentences, mentions_skill_name, parse_grade, rubric_items

CRITERIA = rubric_items(["metaphor", "red herring", "accident (fallacy)"], "Beekeeping")
LIMIT_S = 0.5          # per call; the measured worst case is a few milliseconds
SIZE = 16 * 1024


def readers():
    return {
        "parse_grade": lambda t: parse_grade(t, CRITERIA),
        "extract_answer": extract_answer_with_rule,
        "count_reference": count_sentences,
        "count_improved": lambda t: count_sentences(t, rule="improved"),
        "explicit_name": lambda t: mentions_skill_name("accident (fallacy)", t),
    }


def worst_cases(size: int = SIZE) -> dict[str, str]:
    """Replies built to make a backtracking regex explode, each about `size` characters."""
    sp = " " * size
    line = max(1, size // 400)
    return {
        "points_earned_spaces": "Points earned" + sp,
        "points_earned_spaces_x": "Points earned" + sp + "x",
        "point_earned_stars": "Point earned" + " *" * (size // 2),
        "grade_spaces": "Point earned: 1\nGrade" + sp,
        "separator_spaces": "| a | b |\n|--" + sp + "x|\n",
        "separator_dashes": "|" + "-" * size + "x\n|a|1|",
        "line_score_spaces": ("a: 1" + " " * 390 + "x\n") * line,
        "line_dots": ("a" + "." * 395 + "x\n") * line,
        "pipes": "|" * size,
        "pipe_rows": "| a | 1 |\n" * (size // 10),
        "total_spaces": ("Total points earned" + " " * 6 + "x ") * (size // 30),
        "bold_answer_spaces": "**Answer" + sp + "x",
        "answer_then_hashes": "Answer: a" + sp + "#x",
        "minus_spaces": "-" + sp + "1",
        "dots": "." * size,
        "dot_spaces": ". " * (size // 2),
        "initials": "a." * (size // 2) + " x",
        "newlines_spaces": ("\n" + " " * 50) * (size // 51) + "x",
    }


def _time(f, text) -> float:
    """CPU seconds of one call (wall time on a shared machine measures the neighbours too)."""
    t0 = time.process_time()
    f(text)
    return time.process_time() - t0


@pytest.mark.parametrize("name", sorted(worst_cases(64)))
def test_constructed_worst_cases_are_linear(name):
    text = worst_cases()[name]
    for reader, f in readers().items():
        assert _time(f, text) < LIMIT_S, (name, reader)


_TOKENS = ["Points earned", "Point earned:", "Point earned: 1", "Grade:", "Grade: 4", "Total",
           "Total Points Earned", "|", "|---|", "---", ":", "*", "**", "-", ".", "...", " ",
           "   ", "\n", "1", "0", "1/1", "0.5", "½", "✓", "Answer:", "**Answer:**", "Answer :",
           "Explanation", "Explanation:", "#", "'", '"', "Mr. ", "A. ", "U.S.",
           "Correctly illustrates metaphor", "Pertains to Beekeeping", "Text makes sense",
           "At most two sentences", "accident", "fallacy", "(", ")", "x", "\\|"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large])
@given(st.one_of(
    st.lists(st.sampled_from(_TOKENS), max_size=600).map("".join),
    st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=8).map(
        lambda parts: ("".join(parts) * (SIZE // max(1, len("".join(parts)))))[:SIZE]),
    st.text(max_size=2000)))
def test_any_reply_parses_fast_and_never_raises(text):
    for reader, f in readers().items():
        assert _time(f, text) < LIMIT_S, reader
    g = parse_grade(text, CRITERIA)
    assert g.status in ("ok", "parse_failed")
    assert (g.points is None) == (g.status == "parse_failed")


def test_a_pipe_in_a_topic_or_skill_name_is_still_gradable():
    crit = rubric_items(["either|or", "metaphor"], "Cats | Dogs")
    reply = ("Here's the grading table:\n| Criteria | Points Earned |\n|---|---|\n"
             + "\n".join(f"| {c} | {p} |" for c, p in zip(crit, [1, 0, 1, 1, 1]))
             + "\n| Total Points Earned | 4 |")
    g = parse_grade(reply, crit)
    assert g.status == "ok" and g.points == [1.0, 0.0, 1.0, 1.0, 1.0], g.notes
    escaped = reply.replace("either|or", "either\\|or").replace("Cats | Dogs", "Cats \\| Dogs")
    assert parse_grade(escaped, crit).points == [1.0, 0.0, 1.0, 1.0, 1.0]


if __name__ == "__main__":    # the figures for the record: worst time per case at 16 KB
    worst = (0.0, "", "")
    for name, text in worst_cases().items():
        times = {r: _time(f, text) for r, f in readers().items()}
        r = max(times, key=times.get)
        worst = max(worst, (times[r], name, r))
        print(f"{name:24s} {len(text):6d} chars  slowest {r:16s} {times[r] * 1000:8.2f} ms")
    print(f"worst: {worst[1]} ({worst[2]}) {worst[0] * 1000:.2f} ms")
