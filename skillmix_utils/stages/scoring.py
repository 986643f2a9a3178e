"""The derived points: deterministic corrections to every grading, then the vote (PROTOCOL §4).

For each text: the sentence count (`scoring.sentence_counter`, default the reference rule)
gives the length point, which **replaces every grader's length verdict**; with
`scoring.explicit_name_rule` (the paper's harder variant, on by default) a skill whose name
appears in the text as whole words, case-insensitively (`grading.mentions_skill_name`), earns
no point whatever the grader said. Then, per grader, the majority vote over its valid rounds
(status "ok") decides each criterion (`metrics.majority_vote`: awarded when the mean of the
valid rounds is above 0.5). Failed rounds are left out of the vote, never scored 0;
a grader with no valid round has no voted points for that text.
"""
from __future__ import annotations

from ..config import ScoringSpec
from ..records import Derived, Grading, TextRecord


def corrections(rec: TextRecord, scoring: ScoringSpec) -> tuple[int | None, float | None, list[str]]:
    """(sentence count, length point, skills named in the text) for one record."""
    from ..grading import count_sentences, mentions_skill_name
    from ..prompts import sentence_limit

    if rec.answer is None:
        return None, None, []
    n = count_sentences(rec.answer, rule=scoring.sentence_counter)
    length_point = 1.0 if n <= sentence_limit(rec.combination.k) else 0.0
    named = [s for s in rec.combination.skills if mentions_skill_name(s, rec.answer)]
    return n, length_point, named


def adjusted_points(grading: Grading, k: int, length_point: float | None,
                    named: list[str], skills, scoring: ScoringSpec) -> list[float | None] | None:
    """A grading's k + 3 points after the length and explicit-name corrections.

    >>> g = Grading(grader="x", points=[1, 1, 1, 1, 0])
    >>> adjusted_points(g, 2, 1.0, ["irony"], ("metaphor", "irony"), ScoringSpec())
    [1.0, 0.0, 1.0, 1.0, 1.0]
    """
    if grading.status != "ok" or grading.points is None or len(grading.points) != k + 3:
        return None
    pts = [None if p is None else float(p) for p in grading.points]
    if length_point is not None:
        pts[k + 2] = length_point
    if scoring.explicit_name_rule:
        for i, skill in enumerate(skills):
            if skill in named:
                pts[i] = 0.0
    return pts


def rounds_by_grader(rec: TextRecord, scoring: ScoringSpec, derived: Derived | None = None
                     ) -> dict[str, dict[int, list[float | None]]]:
    """grader label -> {round: adjusted points} over the record's valid gradings."""
    d = derived if derived is not None else rec.derived
    k = rec.combination.k
    out: dict[str, dict[int, list[float | None]]] = {}
    for g in rec.gradings:
        out.setdefault(g.grader, {})
        pts = adjusted_points(g, k, d.length_point, d.explicit_names, rec.combination.skills, scoring)
        if pts is not None:
            out[g.grader][g.round] = pts
    return out


def derive(rec: TextRecord, scoring: ScoringSpec) -> Derived:
    """The record's `Derived`: sentence count, length point, named skills, votes per grader."""
    from ..metrics import majority_vote

    n, length_point, named = corrections(rec, scoring)
    d = Derived(sentence_count=n, length_point=length_point, explicit_names=named)
    for label, rounds in rounds_by_grader(rec, scoring, d).items():
        d.valid_rounds[label] = len(rounds)
        if rounds:
            nan = float("nan")
            voted, _ = majority_vote([[nan if p is None else p for p in rounds[r]]
                                      for r in sorted(rounds)])
            d.voted_points[label] = [None if v != v else float(v) for v in voted.tolist()]
    return d
