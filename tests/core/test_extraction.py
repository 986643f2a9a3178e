"""Answer extraction (docs/protocol.md §3): after the last `Answer:`, before the first following
`Explanation`, stripped; robust to bold markers, quotes and missing markers, naming the rule."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skillmix_utils.core.answers import Extraction, extract_answer, extract_answer_with_rule

CASES = [
    # (reply, text, rule)
    ("Answer: The hive hums.\nExplanation: metaphor.", "The hive hums.", "answer_marker"),
    ("Answer:The hive hums.Explanation:x", "The hive hums.", "answer_marker"),
    # the LAST Answer: and the FIRST Explanation after it
    ("Answer: draft.\nExplanation: a.\n\nAnswer: final text.\nExplanation: b. Explanation: c.",
     "final text.", "answer_marker"),
    # "Explanation" inside the first answer does not matter: only the one after the last marker
    ("Answer: one\nExplanation: see Answer: two\nExplanation: z", "two", "answer_marker"),
    ("Improved Answer: The hive hums.\n\nExplanation: ...", "The hive hums.", "answer_marker"),
    ("Sure! Here is an improved version.\n\n**Answer:** The hive hums.\n\n**Explanation:** ...",
     "The hive hums.", "bold_answer_marker"),
    ("**Answer**: The hive hums.\n**Explanation**: ...", "The hive hums.", "bold_answer_marker"),
    ("**Improved Answer:**\n\"The hive hums.\"\n\n**Explanation:**", "The hive hums.",
     "bold_answer_marker"),
    ("**Answer: The hive hums.**\n\nExplanation: ...", "The hive hums.", "bold_answer_marker"),
    ("Answer : The hive hums.\nExplanation : ...", "The hive hums.", "loose_answer_marker"),
    ("ANSWER: The hive hums. EXPLANATION: ...", "The hive hums.", "loose_answer_marker"),
    ("answer: The hive hums.\nexplanation: ...", "The hive hums.", "loose_answer_marker"),
    ("Answer: \u201cThe hive hums.\u201d\nExplanation: ...", "The hive hums.", "answer_marker"),
    ("Answer: 'The hive hums.'\nExplanation: ...", "The hive hums.", "answer_marker"),
    ("Answer: *The hive hums.*\nExplanation: ...", "The hive hums.", "answer_marker"),
    # quotes inside the text are kept: they do not wrap the whole of it
    ('Answer: "Stay," she said, "the bees are calm."\nExplanation: ...',
     '"Stay," she said, "the bees are calm."', "answer_marker"),
    ("Answer: The keeper\u2019s hive hums.\nExplanation: ...", "The keeper\u2019s hive hums.",
     "answer_marker"),
    ("Answer: The hive hums.\n\n## Explanation\nmetaphor", "The hive hums.", "answer_marker"),
    ("The hive hums.\n\nExplanation: a metaphor.", "The hive hums.", "no_marker_before_explanation"),
    ("\"The hive hums.\"", "The hive hums.", "no_marker"),
    ("  The hive hums.  ", "The hive hums.", "no_marker"),
    ("Answer:\n\nExplanation: none", "", "empty"),
    ("", "", "empty"),
    ("Explanation: nothing before", "", "empty"),
    ("Answer: multi\nline text.\nExplanation:", "multi\nline text.", "answer_marker"),
]


@pytest.mark.parametrize("reply,text,rule", CASES)
def test_extraction(reply, text, rule):
    got = extract_answer_with_rule(reply)
    assert got == Extraction(text, rule)
    assert extract_answer(reply) == text


def test_none_reply():
    assert extract_answer_with_rule(None) == Extraction("", "empty")


def test_extraction_is_a_tuple():
    text, rule = extract_answer_with_rule("Answer: x")
    assert (text, rule) == ("x", "answer_marker")


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_never_raises(text):
    got = extract_answer_with_rule(text)
    assert isinstance(got.text, str) and got.rule in {
        "answer_marker", "bold_answer_marker", "loose_answer_marker",
        "no_marker_before_explanation", "no_marker", "empty"}
    assert (got.rule == "empty") == (got.text == "")
    assert got.text == got.text.strip()


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="*_\"'`\u201c\u201d\u2018\u2019#"), min_size=1)
       .map(str.strip).filter(lambda s: s and "answer" not in s.lower() and "explanation" not in s.lower()))
def test_marker_roundtrip(body):
    assert extract_answer(f"Answer: {body}\nExplanation: because") == body


@pytest.mark.parametrize("reply,text", [
    ("Answer: The explanation of the dance is simple.\nExplanation: ...",
     "The explanation of the dance is simple."),
    ("Answer: The hive hums.\nexplanation: lower-case marker", "The hive hums."),
    ("Answer: The hive hums.\n**EXPLANATION:** shouting", "The hive hums."),
])
def test_explanation_cut(reply, text):
    assert extract_answer(reply) == text


# Replies shaped like the Skill-Mix reference code's published outputs (its `test/` folder:
# GPT-4 quotes its answer, LLaMA-2 writes a preamble, Mistral \r\n line breaks), with the text the
# reference recorded as `text_1`: reply.split("Answer:")[-1].split("Explanation")[0].strip().
REFERENCE_SHAPED = [
    ('Answer: "Given that most beekeepers wear veils, isn\'t your bare face a risk?"\n\n'
     "Explanation: The complex question presupposes ...",
     '"Given that most beekeepers wear veils, isn\'t your bare face a risk?"'),
    (" Of course! Here's an improved version:\n\nAnswer: The hive hums like a city. "
     "Explanation: This shows a metaphor.", "The hive hums like a city."),
    ("Answer: \r\n\r\nWhy do you think your knot is the best one?\r\n\r\nExplanation:\r\n\r\nIt ...",
     "Why do you think your knot is the best one?"),
    (" Of course!\n\nAnswer:\n\nExplanation: This text demonstrates nothing.", ""),
    ("**Answer:** \"Bees dance.\"\n\n**Explanation:** ...", '** "Bees dance."\n\n**'),
    ("No marker here, just text.", "No marker here, just text."),
    ("Answer: A text whose explanation: starts here. Explanation: x",
     "A text whose explanation: starts here."),
]


@pytest.mark.parametrize("reply,text_1", REFERENCE_SHAPED)
def test_reference_rule_reads_what_the_reference_recorded(reply, text_1):
    """Under the `reference` protocol (a writer's answer_rule) the text that counts is the
    reference's `text_1` to the character: wrapping quotes kept, nothing but its own cut."""
    assert extract_answer_with_rule(reply, "reference").text == text_1


def test_improved_rule_unwraps_where_the_reference_does_not():
    reply = REFERENCE_SHAPED[0][0]
    assert extract_answer_with_rule(reply).text.startswith("Given that")      # unwrapped
    assert extract_answer_with_rule(reply, "reference").text.startswith('"Given that')
    assert extract_answer_with_rule(reply, "reference").rule == "reference_marker"
    with pytest.raises(ValueError):
        extract_answer_with_rule(reply, "fancy")
