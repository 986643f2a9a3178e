"""Prompts render docs/protocol.md §3–4 exactly. The expected texts below are typed from the
published templates, with their whitespace: turn 1 has a space before the blank line after
"...found fully from the text." and turn 2 one before the line break after "...up to N sentences."
(what reaches the API is checked on the wire in tests/llm/test_prompt_on_the_wire.py)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from skillmix_utils.core import prompts
from skillmix_utils.core.prompts import (
    PROMPT_VERSION,
    generation_turn1,
    generation_turn2,
    grading_prompt,
    number_words,
    sentence_limit,
)

METAPHOR = SimpleNamespace(name="metaphor", definition="Describing one thing as another.",
                           example="The hive is a factory.", category="literary", split="train")
HERRING = SimpleNamespace(name="red herring", definition="A distraction from the issue.",
                          example="Forget the stings; look at the honey prices.",
                          category="rhetorical", split="train")

TURN1 = (
    "Greetings! I am interested in natural language processing and I was wondering if you could "
    "help me generate an example of text that illustrates multiple skills in semantics or syntax. "
    "The example should be a minimal natural piece of text with up to a few lines in the context "
    "of Beekeeping that illustrates all of the following skills: metaphor, red herring. Please "
    "keep the text as short as possible, and make sure the concepts can be found fully from the "
    "text. \n"
    "\n"
    "For reference, here are the definitions and examples for the concepts:\n"
    "**metaphor**: Describing one thing as another. For example, The hive is a factory.\n"
    "**red herring**: A distraction from the issue. For example, Forget the stings; look at the "
    "honey prices.\n"
    "\n"
    "Please start the minimal natural piece of text with 'Answer:' and start the explanation with "
    "'Explanation:'.\n"
    "\n"
    "Thanks very much!")

TURN2_K3 = (
    "Thanks very much. Could you please look over your answer and improve it? Please make sure "
    "that the new answer better illustrates all skills and remains on topic. On top of that, "
    "please also make sure the new answer only contains up to two sentences. \n"
    "Again, please start the improved minimal natural piece of text with 'Answer:' and start the "
    "explanation with 'Explanation:'.\n"
    "\n"
    "Thanks very much!")

GRADING_HEAD = (
    "Greetings! I was wondering if you could help me grade the following answer given by a "
    "student.\n"
    "\n"
    "I\u2019ll first describe the question that was given to the student, and then give you the "
    "student\u2019s answer, and the grading rubric.\n"
    "\n"
    "The question given to the student was as follows: \"Give a single piece of text with up to "
    "one sentence in the context of Beekeeping. This single piece of text should illustrate all "
    "of the following skills: metaphor, red herring.\"\n"
    "\n"
    "The student's answer was: \"The hive is a factory, but who cares about stings?\"\n"
    "\n"
    "For reference, here are the definitions for the skills:\n")

RUBRIC = ("Correctly illustrates metaphor, Correctly illustrates red herring, Pertains to "
          "Beekeeping, Text makes sense, At most one sentence")

GRADING_TABLE = GRADING_HEAD + (
    "**metaphor**: Describing one thing as another. For example, The hive is a factory.\n"
    "**red herring**: A distraction from the issue. For example, Forget the stings; look at the "
    "honey prices.\n"
    "\n"
    "Using a rubric table format, please grade the student's answer with positive scoring. Each "
    "criterion is worth 1 point. The criteria are: " + RUBRIC + ". The table should only have "
    "the following columns: 'Criteria', 'Points Earned'. In the 'Points Earned' column, please "
    "provide only numerical values with no additional formatting. Please introduce the table "
    "with 'Here's the grading table:' and please include a row for 'Total Points Earned' at the "
    "end of the table. Finally, please start your grading explanation with 'Explanation':")

GRADING_POINT_EARNED = GRADING_HEAD + (
    "**metaphor**: Describing one thing as another.\n"
    "**red herring**: A distraction from the issue.\n"
    "\n"
    "Please grade the student's answer using the following criteria: " + RUBRIC + ". For each "
    "item in the rubric, please include in your evaluation 'Point earned: 1' if the requirement "
    "is met and 'Point earned: 0' otherwise. Please finish your grading with 'Grade:' followed by "
    "a number indicating the total points earned by the student. Thanks so much.")

ANSWER = "The hive is a factory, but who cares about stings?"


def test_version():
    assert PROMPT_VERSION == "v2"
    # v1 stays as it was (records made with it name it); only a new folder changes wording.
    assert prompts.load_template("generation_turn1", "v1") + " " != prompts.load_template("generation_turn1")
    assert "text.\n\nFor reference" in prompts.load_template("generation_turn1", "v1")


def test_number_words():
    assert [number_words(n) for n in (1, 2, 3, 4)] == [
        "one sentence", "two sentences", "three sentences", "four sentences"]


@pytest.mark.parametrize("k,limit", [(1, 1), (2, 1), (3, 2), (4, 3), (5, 4), (6, 5)])
def test_sentence_limit(k, limit):
    assert sentence_limit(k) == limit                     # max(1, k - 1)


def test_turn1_exact():
    assert generation_turn1([METAPHOR, HERRING], "Beekeeping") == TURN1


def test_turn2_exact():
    assert generation_turn2(3) == TURN2_K3
    assert "only contains up to one sentence. \nAgain" in generation_turn2(1)
    assert "only contains up to one sentence. \nAgain" in generation_turn2(2)
    assert "only contains up to four sentences. \nAgain" in generation_turn2(5)


def test_grading_table_exact():
    assert grading_prompt([METAPHOR, HERRING], "Beekeeping", ANSWER) == GRADING_TABLE
    assert grading_prompt([METAPHOR, HERRING], "Beekeeping", ANSWER, variant="table") == GRADING_TABLE


def test_grading_point_earned_exact():
    got = grading_prompt([METAPHOR, HERRING], "Beekeeping", ANSWER, variant="point_earned")
    assert got == GRADING_POINT_EARNED
    assert "For example" not in got                       # definitions without examples


def test_curly_apostrophe_kept():
    assert "I\u2019ll first describe" in grading_prompt([METAPHOR], "Knots", "x")
    assert "I'll" not in grading_prompt([METAPHOR], "Knots", "x")


def test_braces_in_values_are_not_reformatted():
    odd = SimpleNamespace(name="set {x}", definition="Uses {braces}.", example="{0}")
    text = grading_prompt([odd], "Sets {A}", "answer with {braces} and {0}")
    assert 'answer with {braces} and {0}"' in text and "**set {x}**: Uses {braces}. For example, {0}" in text


def test_unknown_variant():
    with pytest.raises(ValueError):
        grading_prompt([METAPHOR], "Knots", "x", variant="yes_no")


def test_templates_are_data_files():
    from importlib import resources
    folder = resources.files("skillmix_utils").joinpath("data", "prompts", PROMPT_VERSION)
    names = ["generation_turn1.txt", "generation_turn2.txt", "grading_point_earned.txt",
             "grading_table.txt"]           # other prompts (a local judge's) may live beside them
    for name in names:
        assert "{" in folder.joinpath(name).read_text(encoding="utf-8")
    assert prompts.load_template("grading_table").count("{") == 6


def test_templates_match_protocol_file_when_present():
    """Cross-check against ../shared/PROTOCOL.md's blockquotes when the checkout has it."""
    import re
    from pathlib import Path

    protocol = Path(__file__).resolve().parents[2].parent / "shared" / "PROTOCOL.md"
    if not protocol.exists():
        pytest.skip("no ../shared/PROTOCOL.md beside this checkout")
    text = protocol.read_text(encoding="utf-8")
    blocks, current = [], []
    for line in text.splitlines():
        if line.startswith(">"):
            current.append(line[2:] if line.startswith("> ") else line[1:])
        elif current:
            blocks.append("\n".join(current))
            current = []
    # Blockquotes cannot show a space at the end of a line: compare without them.
    bare = lambda t: "\n".join(line.rstrip(" ") for line in t.split("\n"))  # noqa: E731
    assert blocks[:3] == [bare(prompts.load_template(n)) for n in
                          ("generation_turn1", "generation_turn2", "grading_table")]
    tail = re.search(r'ends instead with: \*"(.*?)"\*', text, re.S).group(1)
    assert prompts.load_template("grading_point_earned").endswith(" ".join(tail.split()))
