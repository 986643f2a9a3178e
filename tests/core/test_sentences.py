"""The sentence counter (docs/protocol.md §4) and the explicit-name rule."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skillmix_utils.core.grading import count_sentences, mentions_skill_name

REFERENCE = [
    # split on: terminal . ! ?, optional quote, ONE space, optional quote, a capital letter
    ("One.", 1),
    ("One. Two.", 2),
    ("One! Two? Three.", 3),
    ("One. two.", 1),                         # no capital: no split
    ("One.  Two.", 1),                        # two spaces: no split
    ("One.\nTwo.", 1),                        # a newline is not "one space"
    ('He said "Go." Then he left.', 2),       # quote after the stop
    ('He left. "Go," she said.', 2),          # quote before the capital
    ("He left.\u201d \u201cGo,\u201d she said.", 1),  # curly quotes are not quote marks
    ("Why?'' 'Because.' That was all.", 3),   # any number of straight quotes around the space
    ('He said "\'Go.\'" Then left.', 2),
    ("One.''Two.", 1),                      # quotes but no space: no split
    ("Mr. Smith and Mrs. Jones met Ms. Lee, Dr. Who and Prof. Plum.", 1),  # titles joined
    ("Ask the Dr? Yes, she said.", 1),        # the reference joins titles by regex: "." is any
    ("Mr.Smith left. Dr.Brown stayed.", 2),
    ("He met the Dr. Then left.", 1),         # "Dr. " is joined even at a sentence end (reference)
    ("See e.g. The hive.", 2),                # the reference splits after "e.g."
    ("It costs 3.5 dollars. Bees.", 2),
    ("Wait... The bees.", 2),
    ("Sew it. 2 stitches.", 1),               # a digit is not a capital letter
    ("No stop at the end", 1),
]


@pytest.mark.parametrize("text,n", REFERENCE)
def test_reference_rule(text, n):
    assert count_sentences(text) == n
    assert count_sentences(text, rule="reference") == n


IMPROVED = [
    ("One.\nTwo.", 2),
    ("One.  Two.", 2),
    ("See e.g. the hive. It hums.", 2),
    ("See e.g. The Hive, a book.", 1),
    ("J. K. Rowling wrote it. Then she rested.", 2),
    ("John F. Kennedy spoke.", 1),
    ("Dr. Smith keeps bees. Mrs. Smith sells honey.", 2),
    ("Wait... the bees left.", 1),
    ("Wait\u2026 The bees left.", 2),
    ("(It hums.) The hive sleeps.", 2),
    ("Sew it. 2 stitches remain.", 2),
    ("A title\n\nThe text follows.", 2),
    ("The U.S. army kept bees.", 1),
    ("One!! Two?!", 2),
]


@pytest.mark.parametrize("text,n", IMPROVED)
def test_improved_rule(text, n):
    assert count_sentences(text, rule="improved") == n


def test_empty_text_counts_as_the_reference_counts_it():
    # The reference counts the pieces of a split: the empty text is one piece. The improved
    # counter says 0 for blank text.
    assert count_sentences("") == 1 and count_sentences("  \n ") == 1
    assert count_sentences("", rule="improved") == 0 and count_sentences(" \n", rule="improved") == 0


@pytest.mark.parametrize("text,n", [
    ("Ask the Dr? Yes, she said.", 1),         # "Dr. " is a regex there: "Dr? " is joined
    ("Call the Ms! Now.", 1),                   # "Ms. " matches "Ms! "
    ("Ask the Prof? Yes. Then tea.", 2),
])
def test_reference_counter_joins_titles_as_the_reference_regex_does(text, n):
    """The reference code joins titles with re.sub("Dr. ", "Dr.", text): its "." matches any
    character, so "Dr? Yes" is not split there (a literal replace would count 2)."""
    assert count_sentences(text) == n


def test_unknown_rule():
    with pytest.raises(ValueError):
        count_sentences("x", rule="fancy")


_PIECES = st.lists(st.sampled_from(
    [".", "!", "?", " ", "  ", "'", '"', "\u201c", "\u201d", "\n", "A", "Z", "a", "7", "Mr. ",
     "Mrs. ", "Dr. ", "Prof. ", "Ms. ", "Mr.", "e.g. "]), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_PIECES, st.text()))
def test_reference_counter_is_the_published_regex(text):
    """The `reference` counter equals the reference code's on any text: join the titles with
    re.sub (regexes), then count the pieces of a split on [.!?]['"]* ['"]*[A-Z]."""
    import re

    joined = text
    for title in ("Mr. ", "Mrs. ", "Ms. ", "Dr. ", "Prof. "):
        joined = re.sub(title, title[:-1], joined)
    assert count_sentences(text) == len(re.split(r"""[.!?]['"]* ['"]*[A-Z]""", joined))


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_at_least_one_for_non_blank_text(text):
    for rule in ("reference", "improved"):
        n = count_sentences(text, rule=rule)
        assert n >= 1 if text.strip() or rule == "reference" else n == 0


NAMES = [
    # (skill, text, named?)
    ("metaphor", "It is a metaphor.", True),
    ("metaphor", "METAPHOR!", True),
    ("metaphor", "Metaphors abound.", True),              # plural counts as the name
    ("metaphor", "A metaphorical hive.", False),          # whole words only (the reference fired)
    ("metaphor", "metaphorically", False),
    ("red herring", "That is a red herring.", True),
    ("red herring", "A red-herring argument.", True),
    ("red herring", "A red\nherring.", True),
    ("red herring", "A red fish and a herring.", False),
    ("modus ponens", "modus  ponens", True),
    ("self serving bias", "a self-serving bias", True),
    ("self serving bias", "self serving", False),
    ("accident (fallacy)", "An accident in the apiary.", False),   # one-word head: not alone
    ("accident (fallacy)", "the accident fallacy", True),
    ("accident (fallacy)", "the accident (fallacy)", True),
    ("complex question (loaded question with implicit assumption)", "A complex question.", True),
    ("complex question (loaded question with implicit assumption)",
     "A loaded question with implicit assumption.", True),
    ("complex question (loaded question with implicit assumption)", "A loaded question.", False),
    ("folk physics (common knowledge physics)", "Folk physics says so.", True),
    ("folk physics (common knowledge physics)", "Common knowledge physics.", True),
    ("folk physics (common knowledge physics)", "Physics is common knowledge.", False),
    ("irony", "", False),
]


@pytest.mark.parametrize("skill,text,named", NAMES)
def test_mentions_skill_name(skill, text, named):
    assert mentions_skill_name(skill, text) is named


def test_mentions_skill_object():
    assert mentions_skill_name(SimpleNamespace(name="Red Herring"), "a RED HERRING")


def test_regex_characters_in_names():
    assert mentions_skill_name("C++ (language)", "I like c.") is False   # one-word head alone
    assert mentions_skill_name("red herring", "It was red. Herring was served.") is False
    assert mentions_skill_name("a.b", "a b") is True      # punctuation separates words
    assert mentions_skill_name("?", "?") is False           # no words, nothing to match


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30), st.text())
def test_mentions_never_raises(name, text):
    assert mentions_skill_name(name, text) in (True, False)


@pytest.mark.parametrize("text,n", [
    ("See No. 5 on the list. It hums.", 2),
    ("They said No. Then they left.", 2),
    ("Acme Inc. Their bees won.", 2),
])
def test_improved_abbreviations(text, n):
    assert count_sentences(text, rule="improved") == n
