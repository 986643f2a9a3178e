"""Unit tests of the stage pieces with stand-in backends (no server, no model)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from skillmix_utils.core.catalog import load_catalog
from skillmix_utils.core.config import GraderSpec, ScoringSpec, StudyConfig
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.records import Combination, Grading, RecordStore, TextRecord
from skillmix_utils.llm import ChatResult
from skillmix_utils.stages.context import StageRun
from skillmix_utils.stages.grade import grade_records
from skillmix_utils.stages.scoring import score


def _rec(answer="Bees hum in the hive.", skills=("metaphor", "red herring"), topic="Beekeeping"):
    return TextRecord(id="eval/s/held_out/k2/c0/g0", stage="eval", model="m", answer=answer,
                      combination=Combination(skills=skills, topic=topic, k=len(skills)))


def test_derive_replaces_length_zeroes_named_skills_and_votes_valid_rounds():
    rec = _rec("A metaphor: the hive is a city. Bees hum.")     # two sentences, names metaphor
    rec.gradings = [
        Grading(grader="g", round=0, points=[1, 1, 1, 1, 1]),
        Grading(grader="g", round=1, points=[1, 0, 1, 1, 1]),
        Grading(grader="g", round=2, status="parse_failed", raw_reply="??"),
        Grading(grader="h", round=0, status="error", error="timeout"),
    ]
    d = score(rec, ScoringSpec())
    assert d.sentence_count == 2 and d.length_point == 0.0
    assert d.explicit_names == ["metaphor"]
    assert d.voted_points == {"g": [0.0, 0.0, 1.0, 1.0, 0.0]}   # red herring 1 of 2: a tie
    assert d.valid_rounds == {"g": 2, "h": 0}
    off = score(rec, ScoringSpec(explicit_name_rule=False))
    assert off.voted_points["g"][0] == 1.0 and off.explicit_names == ["metaphor"]


class ScriptedBackend:
    """chat() answers from a list of replies (None = a failed call); counts the calls."""

    def __init__(self, replies):
        self.replies, self.calls = list(replies), 0

    def chat(self, conversations, **params):
        out = []
        for _ in conversations:
            self.calls += 1
            text = self.replies.pop(0)
            out.append(ChatResult(texts=[text] if text else [], error=None if text else "HTTP 500",
                                  params=params))
        return out


TABLE = ("| Criteria | Points Earned |\n|---|---|\n| Correctly illustrates metaphor | 1 |\n"
         "| Correctly illustrates red herring | 1 |\n| Pertains to Beekeeping | 1 |\n"
         "| Text makes sense | 1 |\n| At most one sentence | 0 |\n")


def _run(tmp_path):
    return StageRun(StudyConfig(name="t", output_dir=str(tmp_path)))


def test_failed_and_unparsable_gradings_are_kept_and_retried(tmp_path):
    run, catalog = _run(tmp_path), load_catalog()
    grader = GraderSpec(spec="openai:gpt-4o", name="g", rounds=2, parse_retries=0)  # asked once
    backend = ScriptedBackend([None, "no idea"])
    run._backends[run._key(grader, None)] = backend
    store = RecordStore(tmp_path / "r.jsonl")
    rec = _rec()
    grade_records(run, [rec], [grader], catalog, store)
    assert [(g.round, g.status) for g in rec.gradings] == [(0, "error"), (1, "parse_failed")]
    assert rec.gradings[1].raw_reply == "no idea" and rec.gradings[0].points is None
    assert "g" not in rec.derived.voted_points          # never scored 0
    backend.replies = [TABLE, TABLE]
    grade_records(run, [rec], [grader], catalog, store)
    assert [g.status for g in rec.gradings] == ["ok", "ok"]
    assert rec.derived.voted_points["g"] == [1.0, 1.0, 1.0, 1.0, 1.0]  # length: counted, 1 sentence
    assert backend.calls == 4
    grade_records(run, [rec], [grader], catalog, store)   # nothing owed: no call
    assert backend.calls == 4
    assert store.load()[rec.id].derived.voted_points["g"] == [1.0] * 5


def test_local_judge_reads_yes_probabilities_and_makes_one_round(tmp_path):
    run, catalog = _run(tmp_path), load_catalog()
    grader = GraderSpec(spec="hf:smollm2-135m-instruct", name="j", method="yes_no_logprob", rounds=3)
    asked = []

    def yes_no_probabilities(conversations, with_tokens=False):
        asked.extend(conversations)
        probs = [0.9, 0.2, 0.7, 0.51, 0.1][:len(conversations)]
        return (probs, [100 + i for i in range(len(conversations))]) if with_tokens else probs

    run._backends[run._key(grader, None)] = SimpleNamespace(yes_no_probabilities=yes_no_probabilities)
    rec = _rec()
    grade_records(run, [rec], [grader], catalog, RecordStore(tmp_path / "r.jsonl"))
    assert len(asked) == 5 and "Correctly illustrates metaphor" in asked[0][0]["content"]
    (g,) = rec.gradings
    assert (g.method, g.round, g.points) == ("yes_no_logprob", 0, [1.0, 0.0, 1.0, 1.0, 0.0])
    assert '"p_yes": [0.9, 0.2' in g.raw_reply
    # The judge read k + 3 prompts: the cost table must not say it read 0 tokens.
    assert (g.usage.input_tokens, g.usage.output_tokens) == (100 + 101 + 102 + 103 + 104, 0)
    assert rec.derived.voted_points["j"] == [1.0, 0.0, 1.0, 1.0, 1.0]   # length by count


def test_yes_no_method_needs_a_local_backend(tmp_path):
    run, catalog = _run(tmp_path), load_catalog()
    grader = GraderSpec(spec="openai:gpt-4o", method="yes_no_logprob")
    run._backends[run._key(grader, None)] = ScriptedBackend([])
    with pytest.raises(SkillmixError, match="yes_no_logprob needs a local hf"):
        grade_records(run, [_rec()], [grader], catalog, RecordStore(tmp_path / "r.jsonl"))


def test_graders_sample_at_the_provider_default_and_warn_at_temperature_zero(tmp_path, capsys):
    """Three rounds at temperature 0 are three copies of one grading: the default is 1.0, and a
    config asking for several rounds at 0 is told so."""
    assert GraderSpec(spec="openai:gpt-4o").temperature == 1.0
    run, catalog = _run(tmp_path), load_catalog()
    cold = GraderSpec(spec="openai:gpt-4o", name="g", rounds=3, temperature=0.0)
    run._backends[run._key(cold, None)] = ScriptedBackend([TABLE] * 3)
    grade_records(run, [_rec()], [cold], catalog, RecordStore(tmp_path / "r.jsonl"))
    assert "3 rounds at temperature 0" in capsys.readouterr().err


def test_unreadable_gradings_are_excluded_or_zero_as_configured():
    """`scoring.unreadable`: exclude (default) leaves a parse_failed round out of the vote;
    zero scores it 0 on every criterion but the length, which the sentence count gives, as the
    reference code did."""
    from skillmix_utils.core.config import ScoringSpec
    from skillmix_utils.core.records import Grading
    from skillmix_utils.stages.scoring import score

    rec = _rec()
    k = rec.combination.k
    rec.gradings = [Grading(grader="g", round=0, points=[1.0] * (k + 3)),
                    Grading(grader="g", round=1, status="parse_failed"),
                    Grading(grader="g", round=2, status="parse_failed")]
    assert score(rec, ScoringSpec()).voted_points["g"] == [1.0] * (k + 3)
    zero = score(rec, ScoringSpec(unreadable="zero"))
    assert zero.valid_rounds["g"] == 3 and zero.voted_points["g"] == [0.0] * (k + 2) + [zero.length_point]
