"""The `scoring` and `protocol` presets (docs/protocol.md §10): `reference` reproduces the
Skill-Mix reference code, `improved` is skillmix's own; every difference is an option that a
config can set on its own. Scored here on texts and gradings shaped like the reference's
published outputs (its test/ folder: k = 3, GPT-4 grading LLaMA-2 texts with "Point earned"
replies that list only the skills)."""
from __future__ import annotations

import pytest
import yaml

from skillmix_utils.core.config import (PROTOCOL_PRESETS, SCORING_PRESETS, CatalogSpec,
                                        GraderSpec, ModelSpec, ScoringSpec, StudyConfig,
                                        load_study_config)
from skillmix_utils.core.errors import SkillmixError
from skillmix_utils.core.grading import parse_grade, rubric_items
from skillmix_utils.core.records import Combination, Grading, TextRecord
from skillmix_utils.stages.scoring import score

API = {"spec": "openai:gpt-4-0613"}


def _study(**top):
    return {"name": "p", **top,
            "data": {"teacher": dict(API), "counts": {2: 1}, "mixes": [[2]],
                     "graders": [dict(API), {**API, "method": "point_earned"}]},
            "evaluation": {"students": [{"name": "s", "model": {"spec": "hf:smollm2-135m-instruct"}}],
                           "graders": [dict(API)]}}


def test_presets_fill_every_option_and_an_option_given_wins(tmp_path):
    ref = StudyConfig.model_validate(_study(protocol="reference", scoring="reference"))
    assert ref.scoring.model_dump() == {"preset": "reference", **SCORING_PRESETS["reference"]}
    assert ref.data.teacher.system_message == "You are a helpful assistant."
    assert ref.data.teacher.answer_rule == "reference"
    table, open_weight = ref.data.graders
    assert (table.skill_criterion, open_weight.skill_criterion) == ("Correctly illustrates", "Contains")
    assert ref.evaluation.students[0].model.system_message is None          # a local student
    assert ref.catalog.whitespace == "as_written"

    mixed = StudyConfig.model_validate(_study(
        protocol={"preset": "reference"}, scoring={"preset": "reference", "explicit_name_rule": True},
        catalog={"whitespace": "stripped"}))
    assert mixed.scoring.explicit_name_rule is True and mixed.scoring.unreadable == "zero"
    assert mixed.catalog.whitespace == "stripped"

    plain = StudyConfig.model_validate(_study())
    assert plain.scoring.model_dump() == {"preset": "improved", **SCORING_PRESETS["improved"]}
    assert plain.data.teacher.system_message is None and plain.catalog.whitespace == "stripped"

    # The resolved config written by a stage reads back the same.
    path = tmp_path / "resolved.yaml"
    path.write_text(yaml.safe_dump(ref.model_dump(mode="json")))
    assert load_study_config(path).model_dump(exclude={"output_dir"}) == \
        ref.model_dump(exclude={"output_dir"})


def test_defaults_are_the_improved_preset():
    p = PROTOCOL_PRESETS["improved"]
    m = ModelSpec(spec="openai:x")
    assert (m.system_message, m.answer_rule) == (p["system_message"], p["answer_rule"])
    assert GraderSpec(spec="openai:x", method="point_earned").skill_criterion == p["point_earned_criterion"]
    assert CatalogSpec().whitespace == p["catalog_whitespace"]
    assert ScoringSpec() == ScoringSpec(preset="improved")


@pytest.mark.parametrize("field, value", [("scoring", "exact"), ("protocol", {"preset": "exact"})])
def test_an_unknown_preset_is_named(tmp_path, field, value):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**_study(), field: value}))
    with pytest.raises(SkillmixError) as info:
        load_study_config(path)
    assert f"{field}.preset" in str(info.value)


def test_catalog_as_written_keeps_the_reference_csvs_trailing_space():
    from reference_shapes import SKILLS_CSV, TOPICS_TXT   # tests/ is on sys.path

    spec = {"skills": str(SKILLS_CSV), "topics": str(TOPICS_TXT)}
    raw = CatalogSpec(**spec, whitespace="as_written").load().skill("accident (fallacy)")
    tidy = CatalogSpec(**spec).load().skill("accident (fallacy)")
    assert raw.definition.endswith("exception to it. ") and tidy.definition.endswith("to it.")
    assert raw.name == tidy.name == "accident (fallacy)"


def test_contains_words_rubric_prompts_only():
    with pytest.raises(ValueError):
        GraderSpec(spec="hf:x", method="yes_no_logprob", skill_criterion="Contains")
    with pytest.raises(ValueError):
        GraderSpec(spec="hf:x", method="yes_no_logprob", system_message="Be fair.")


# --- scoring, on reference-shaped records ------------------------------------------------

SKILLS = ("complex question (loaded question with implicit assumption )", "red herring", "metaphor")
TOPIC = "Beekeeping"
# A LLaMA-2-like text: two sentences (k = 3 allows two).
TEXT = "Isn't it odd that your hive hums like a factory? Anyway, the honey was sweet."
SKILLS_ONLY = ("**Complex Question (Loaded Question with Implicit Assumption)**: the student asks "
               "a question that presupposes a fact. Point earned: 1\n\n**Red Herring**: the "
               "honey is beside the point. Point earned: {rh}\n\n**Metaphor**: \"hums like a "
               "factory\" is a simile, not a metaphor. Point earned: 0\n\nGrade: 1")


def _record(text=TEXT, skills=SKILLS, replies=()) -> TextRecord:
    crit = rubric_items(skills, TOPIC)
    gradings = []
    for r, reply in enumerate(replies):
        parsed = parse_grade(reply, crit)
        gradings.append(Grading(grader="gpt-4", method="point_earned", round=r, raw_reply=reply,
                                status="ok" if parsed.ok else "parse_failed",
                                points=parsed.points if parsed.ok else parsed.partial))
    return TextRecord(id="x", stage="eval", model="reference:llama2-7b-chat", answer=text,
                      combination=Combination(skills=skills, topic=TOPIC, k=len(skills)),
                      gradings=gradings)


def test_partial_point_earned_replies_under_each_preset():
    """The reference zero-fills what a reply lacks (then the length point is the sentence
    count's): a text it graded with "Point earned" items for the skills alone scores. skillmix
    keeps the items given and leaves the rest out of the vote, so the text has no full vote."""
    rec = _record(replies=[SKILLS_ONLY.format(rh=1), SKILLS_ONLY.format(rh=0), SKILLS_ONLY.format(rh=1)])
    assert all(g.status == "parse_failed" for g in rec.gradings)
    ref = score(rec, ScoringSpec(preset="reference"))
    assert ref.sentence_count == 2 and ref.length_point == 1.0
    assert ref.round_points["gpt-4"][0] == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert ref.voted_points["gpt-4"] == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    imp = score(rec, ScoringSpec())
    assert imp.round_points["gpt-4"][1] == [1.0, 0.0, 0.0, None, None, 1.0]
    assert imp.voted_points["gpt-4"] == [1.0, 1.0, 0.0, None, None, 1.0]


def test_a_reply_with_no_point_is_zero_under_reference_and_left_out_under_improved():
    rec = _record(replies=["There's no text provided for the student's response.\n\nGrade: 0"])
    assert rec.gradings[0].status == "parse_failed" and rec.gradings[0].points is None
    assert score(rec, ScoringSpec(preset="reference")).voted_points["gpt-4"] == [0.0] * 5 + [1.0]
    assert score(rec, ScoringSpec()).voted_points.get("gpt-4") is None


FULL = "\n".join(f"{c}: yes. Point earned: 1" for c in rubric_items(
    ("self serving bias", "accident (fallacy)"), "Triathlons"))


@pytest.mark.parametrize("scoring, zeroed", [
    ({"preset": "reference"}, []),                                       # off in the reference
    ({"preset": "reference", "explicit_name_rule": True}, ["accident (fallacy)"]),
    ({"preset": "improved"}, ["self serving bias"]),
    ({"preset": "improved", "explicit_name_match": "reference"}, ["accident (fallacy)"]),
])
def test_explicit_name_rule_per_preset(scoring, zeroed):
    """The reference matches the name cut at "(" as a substring: it fires on the everyday word
    "accident" and misses the hyphenated "self-serving bias"; whole words do the opposite."""
    skills = ("self serving bias", "accident (fallacy)")
    text = "After the accident on the bike leg, her self-serving bias blamed the wind."
    rec = _record(text=text, skills=skills)
    rec.combination = Combination(skills=skills, topic="Triathlons", k=2)
    rec.gradings = [Grading(grader="gpt-4", points=[1.0] * 5)]
    d = score(rec, ScoringSpec.model_validate(scoring))
    assert d.voted_points["gpt-4"][:2] == [0.0 if s in zeroed else 1.0 for s in skills]
    assert ScoringSpec.model_validate(scoring).explicit_name_rule == bool(zeroed)


def test_sentence_count_is_the_reference_counters_in_both_presets():
    """'Ask the Dr? Yes, ...': the reference joins "Dr. " by regex, so this is one sentence
    (k = 2 allows one): the length point is earned whatever the grader said."""
    skills = ("metaphor", "red herring")
    rec = _record(text="Ask the Dr? Yes, the hive is a factory, and who cares about rain.",
                  skills=skills)
    rec.gradings = [Grading(grader="gpt-4", points=[1.0, 1.0, 1.0, 1.0, 0.0])]
    for preset in ("reference", "improved"):
        d = score(rec, ScoringSpec(preset=preset))
        assert d.sentence_count == 1 and d.voted_points["gpt-4"][4] == 1.0
