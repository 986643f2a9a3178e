"""An empty answer earns no "makes sense" and no length point, whatever the grader says: the
demo's small judge gave full marks to nothing."""
from __future__ import annotations

import pytest

from skillmix_utils.core.config import ScoringSpec
from skillmix_utils.core.metrics import generation_scores
from skillmix_utils.core.records import Combination, Grading, TextRecord
from skillmix_utils.stages.scoring import score


def _graded(answer: str) -> TextRecord:
    comb = Combination(skills=("metaphor",), topic="Knots", k=1, setting="held_out")
    return TextRecord(id="eval/x/held_out/k1/c0/g0", stage="eval", model="m", combination=comb,
                      answer=answer, gradings=[Grading(grader="judge", points=[1, 1, 1, 1])])


@pytest.mark.parametrize("answer", ["", "  \n\t "])
def test_an_empty_answer_loses_sense_and_length_even_with_a_full_marks_grading(answer):
    d = score(_graded(answer), ScoringSpec())
    assert d.voted_points["judge"] == [1.0, 1.0, 0.0, 0.0]
    assert d.point_rules[2:] == ["empty text", "empty text"]
    assert generation_scores([d.voted_points["judge"]], k=1)["ratio_full_marks"].tolist() == [0.0]


def test_a_written_answer_keeps_the_graders_points():
    d = score(_graded("The knot held like a promise."), ScoringSpec())
    assert d.voted_points["judge"] == [1.0, 1.0, 1.0, 1.0]
    assert "empty text" not in d.point_rules
