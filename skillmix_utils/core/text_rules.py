"""Deterministic text rules that replace or override a grader's verdict (docs/protocol.md §4).

- `count_sentences(text, rule="reference")`: the length point is decided by counting, not by
  the grader. "reference" is the reference code's counter to the character (the default in
  both scoring presets, so numbers stay comparable); "improved" is a better counter kept beside
  it, behind the option (`scoring.sentence_counter`).
- `mentions_skill_name(skill, text, match="whole_words")`: the explicit-name rule (the paper's
  harder variant): a skill earns no point if its name appears verbatim in the text, matched on
  whole words; `match="reference"` matches as the reference code did (`scoring.explicit_name_match`).

- `is_empty_text(text)`: an empty or whitespace-only answer says nothing, so it earns neither
  the "makes sense" point nor the length point, whatever a grader (or the sentence counter,
  which counts the empty text as one sentence) says.

`skillmix_utils.core.grading` re-exports them; call them from there.
"""
from __future__ import annotations

import re
from typing import Literal

# ---------------------------------------------------------------------------------------------
# Sentence counting

# The reference code joins titles with `re.sub("Mr. ", "Mr.", text)` and so on: regexes, whose
# "." is a wildcard, so "Dr? " and "Mrs " are joined too ("Ask the Dr? Yes." is one sentence).
# Kept as written: this counter reproduces the reference to the character.
_TITLES = (("Mr. ", "Mr."), ("Mrs. ", "Mrs."), ("Ms. ", "Ms."), ("Dr. ", "Dr."), ("Prof. ", "Prof."))
# The reference rule as published, character for character: terminal . ! or ?, any number of
# straight quote marks, one space, any number of straight quote marks, a capital letter.
REFERENCE_RULE = r"""[.!?]['"]* ['"]*[A-Z]"""
_REFERENCE_SPLIT = re.compile(REFERENCE_RULE)


def _count_reference(text: str) -> int:
    for pattern, joined in _TITLES:
        text = re.sub(pattern, joined, text)     # "Dr. Smith" -> "Dr.Smith": no split there
    return len(_REFERENCE_SPLIT.split(text))


# Full stops that do not end a sentence even before a capital letter or a digit. Initials are
# a guess: "John F. Kennedy" is one sentence, and so (wrongly) is "Take plan A. Then run."
_TITLES_IMPROVED = ("Mr", "Mrs", "Ms", "Dr", "Prof", "St", "Jr", "Sr", "Mt", "Gen", "Capt", "Lt",
                    "Col", "Sgt", "Rev", "Hon", "Gov", "Sen", "Rep", "Fr", "vs", "cf", "approx")
_PROTECT = re.compile(
    r"\b(?:%s)\.(?=\s)" % "|".join(_TITLES_IMPROVED)      # titles and common abbreviations
    + r"|\b(?:No|Nos|Fig|p|pp|vol|ch)\.(?=\s*\d)"           # "No. 5", "Fig. 2"
    + r"|\b(?:e\.g|i\.e|a\.m|p\.m)\."                       # e.g. i.e. a.m. p.m.
    + r"|(?<![\w.])(?:[A-Za-z]\.){2,}+(?=\s+[a-z])"          # U.S. before a lower-case word
    + r"|(?<![\w.])[A-Z]\.(?=\s+[A-Z][a-z]*\.?\s)"          # initials: "J. K. Rowling"
    + r"|(?<![\w.])[A-Z]\.(?=\s+[A-Z][a-z]+\b)(?<!\bI\.)")  # "John F. Kennedy" (not "I.")
# Possessive quantifiers and the look-behind (a run of stops is tried once, from its start) keep
# the split linear in the text's length.
_IMPROVED_SPLIT = re.compile(
    r"(?<![.!?\u2026])[.!?\u2026]++[\"'\u201d\u2019)\]]*+\s++[\"'\u201c\u2018(\[]*+(?=[A-Z0-9])")


def _count_improved(text: str) -> int:
    total = 0
    for para in re.split(r"\n\s*\n", text):               # a blank line always ends a sentence
        para = re.sub(r"\s+", " ", para).strip()
        if not para:
            continue
        para = _PROTECT.sub(lambda m: m.group(0).replace(".", "\x00"), para)
        pieces = [p for p in _IMPROVED_SPLIT.split(para) if re.search(r"\w", p)]
        total += max(1, len(pieces))
    return total


def count_sentences(text: str, rule: Literal["reference", "improved"] = "reference") -> int:
    """Number of sentences in `text`.

    The reference rule (docs/protocol.md §4), the reference code's to the character: join
    "Mr. ", "Mrs. ", "Ms. ", "Dr. ", "Prof. " to the next word with `re.sub` (so the "." of a
    title matches any character: "Dr? " and "Mrs " are joined too), then count the pieces of
    `re.split(REFERENCE_RULE, text)`, REFERENCE_RULE being the published regex
    `[.!?]['"]* ['"]*[A-Z]`: terminal `.`, `!` or `?`, any number of straight quote marks,
    exactly one space, any number of straight quote marks, a capital letter. So a newline or two
    spaces between sentences do not split, "e.g. The" does, and curly quotes do not count as
    quote marks. The empty text counts 1, as the split's single piece.

    >>> count_sentences("The hive hums. Bees dance! Is it spring?")
    3
    >>> count_sentences('He said "Go." Then he left.')
    2
    >>> count_sentences("He said \u201cGo.\u201d Then he left.")   # curly quotes: no split
    1
    >>> count_sentences("Why?'' 'Because.' That was all.")   # any number of straight quotes
    3
    >>> count_sentences("Dr. Smith keeps bees. Mrs. Smith sells honey.")
    2
    >>> count_sentences("One line.\\nAnother line.")          # the reference misses newlines
    1
    >>> count_sentences("See e.g. Bees like sun.")             # ... and splits after "e.g."
    2
    >>> count_sentences("Ask the Dr? Yes, she said.")          # "Dr. " as a regex joins "Dr? "
    1
    >>> count_sentences("")
    1

    The "improved" rule (0 only for empty or all-whitespace text) also splits at newlines and blank lines, after curly quotes, ellipses
    and closing brackets, and does not split after e.g., i.e., common titles and abbreviations,
    or initials:

    >>> count_sentences("One line.\\nAnother line.", rule="improved")
    2
    >>> count_sentences("See e.g. Bees like sun. J. K. Rowling wrote it.", rule="improved")
    2
    >>> count_sentences("Wait... The bees left.", rule="improved")
    2
    >>> count_sentences("A title\\n\\nThe text follows.", rule="improved")
    2
    """
    if rule == "reference":
        return _count_reference(text or "")
    if rule == "improved":
        return _count_improved(text) if text and text.strip() else 0
    raise ValueError(f"unknown sentence rule {rule!r}: use 'reference' or 'improved'")


def is_empty_text(text: str | None) -> bool:
    """True for an answer with nothing in it (empty, or only whitespace): scoring gives it no
    "makes sense" and no length point (a small judge said yes to such texts; the reference
    sentence counter counts them as one sentence).

    >>> is_empty_text(""), is_empty_text(" \\n\\t"), is_empty_text("Bees."), is_empty_text(None)
    (True, True, False, False)
    """
    return text is not None and not text.strip()


# ---------------------------------------------------------------------------------------------
# The explicit-name rule

def _phrase_pattern(phrase: str) -> str | None:
    words = re.findall(r"[^\W_]+(?:'[^\W_]+)?", phrase)
    if not words:
        return None
    # Words may be separated by spaces, hyphens or brackets ("self-serving bias" names "self
    # serving bias", "accident (fallacy)" names itself); the last word may take a plural ending
    # ("metaphors" names "metaphor"). Other punctuation (". ", ", ") separates, so a name is
    # never matched across a sentence end.
    body = r"[\s\-\u2010-\u2014()\[\]]+".join(re.escape(w) for w in words)
    return rf"(?<![^\W_]){body}(?:s|es)?(?![^\W_])"


def name_patterns(name: str) -> list[str]:
    """The phrases whose whole-word presence counts as naming skill `name`.

    A name without a parenthetical is matched as itself. A name with one, "head (qualifier)", is
    matched as: the full name with or without the brackets ("accident fallacy"), the head if it
    has two or more words ("complex question", "folk physics"), and the qualifier if it has two
    or more words ("common knowledge physics"). A one-word head alone is **not** matched: it is
    usually an everyday word ("accident"), which is exactly what the reference code wrongly fired
    on. The qualifier-first order is not matched ("fallacy of accident").

    >>> name_patterns("metaphor")
    ['metaphor']
    >>> name_patterns("accident (fallacy)")
    ['accident fallacy']
    >>> name_patterns("folk physics (common knowledge physics)")
    ['folk physics common knowledge physics', 'folk physics', 'common knowledge physics']
    """
    m = re.match(r"^\s*(.*?)\s*\((.*)\)\s*(.*)$", name)
    if not m:
        return [" ".join(name.split())]
    head, qualifier = " ".join(m.group(1).split()), " ".join(m.group(2).split())
    phrases = [" ".join(f"{head} {qualifier} {m.group(3)}".split())]
    if len(head.split()) >= 2:
        phrases.append(head)
    if len(qualifier.split()) >= 2:
        phrases.append(qualifier)
    return [p for p in dict.fromkeys(phrases) if p]


def _reference_mention(name: str, text: str) -> bool:
    """The reference code's rule: the name cut at its first "(", stripped and lower-cased, is a
    substring of the lower-cased text (so "metaphor" fires on "metaphorical", "accident
    (fallacy)" on "an accident", and "self serving bias" not on "self-serving bias")."""
    return name.split("(")[0].strip().lower() in text.lower()


def mentions_skill_name(skill, text: str, match: Literal["whole_words", "reference"] = "whole_words"
                        ) -> bool:
    """True if `text` names the skill verbatim: whole words, any case (`match="reference"`: as
    the reference code matched, see `_reference_mention`). `skill` is a name or an object with
    `.name`.

    Whole words: "metaphor" does not fire on "metaphorical" (the reference's substring match
    did); a plural "metaphors" does count; words may be joined by spaces, hyphens or brackets.
    Names with a parenthetical, "head (qualifier)" (see `name_patterns`): the head phrase is
    matched as a whole-word phrase only when it has two or more words ("complex question",
    "folk physics"); a one-word head such as "accident" is matched only together with its
    qualifier ("accident fallacy", "accident (fallacy)"), because alone it is an everyday word;
    a qualifier of two or more words is matched on its own ("common knowledge physics").

    >>> mentions_skill_name("metaphor", "Her smile was a metaphor for spring.")
    True
    >>> mentions_skill_name("metaphor", "A metaphorical hive.")    # whole words only
    False
    >>> mentions_skill_name("Red Herring", "a red-herring argument")
    True
    >>> mentions_skill_name("accident (fallacy)", "An accident at the apiary.")
    False
    >>> mentions_skill_name("complex question (loaded question with implicit assumption)",
    ...                     "That is a loaded question with implicit assumption.")
    True
    >>> mentions_skill_name("accident (fallacy)", "An accident at the apiary.", match="reference")
    True
    """
    name = getattr(skill, "name", skill)
    if match == "reference":
        return _reference_mention(str(name or ""), text or "")
    if match != "whole_words":
        raise ValueError(f"unknown explicit-name match {match!r}: use 'whole_words' or 'reference'")
    if not name or not text:
        return False
    for phrase in name_patterns(str(name)):
        pattern = _phrase_pattern(phrase)
        if pattern and re.search(pattern, text, flags=re.IGNORECASE):
            return True
    return False
