"""The generation and grading prompts of docs/protocol.md §3–4, kept as versioned text files.

    >>> generation_turn2(3).splitlines()[0].endswith("only contains up to two sentences. ")
    True

The templates live in `skillmix_utils/data/prompts/<PROMPT_VERSION>/*.txt` with `{placeholders}`
and are rendered with `str.format`, so the text sent to a model is exactly the published one.
A new wording is a new folder (v3/...), never an edit of an old one: records name the version
they used, and a text made with another version is written anew (data/prompts/README.md says
what changed between versions).

This module also owns the rubric (`rubric_items`): the criteria are part of what the grader is
asked, and the parser (`grading`) imports them from here, never the other way round.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Iterable, Protocol, Sequence

from skillmix_utils.core.grader_methods import method

PROMPT_VERSION = "v2"

_NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                 "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                 "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


class SkillLike(Protocol):
    name: str
    definition: str
    example: str


def _cardinal(n: int) -> str:
    """English words for 0 <= n < 1000, as inflect's number_to_words spells them (no 'and'
    handling is needed for the small numbers a sentence limit takes)."""
    if n < 20:
        return _NUMBER_WORDS[n]
    if n < 100:
        tens, unit = divmod(n, 10)
        return _TENS[tens] + (f"-{_NUMBER_WORDS[unit]}" if unit else "")
    hundreds, rest = divmod(n, 100)
    return f"{_NUMBER_WORDS[hundreds]} hundred" + (f" and {_cardinal(rest)}" if rest else "")


def number_words(n: int) -> str:
    """The sentence limit in words, as the prompts say it.

    >>> number_words(1), number_words(2), number_words(4), number_words(21)
    ('one sentence', 'two sentences', 'four sentences', 'twenty-one sentences')
    """
    if not 0 <= int(n) < 1000:
        raise ValueError(f"sentence count out of range: {n}")
    n = int(n)
    return f"{_cardinal(n)} {'sentence' if n == 1 else 'sentences'}"


def sentence_limit(k: int) -> int:
    """At most max(1, k - 1) sentences for k skills (docs/protocol.md §3).

    >>> [sentence_limit(k) for k in (1, 2, 3, 5)]
    [1, 1, 2, 4]
    """
    return max(1, int(k) - 1)


@lru_cache(maxsize=None)
def load_template(name: str, version: str = PROMPT_VERSION) -> str:
    """The raw template text `data/prompts/<version>/<name>.txt` (its final newline dropped).

    >>> load_template("generation_turn2").endswith("Thanks very much!")
    True
    """
    path = resources.files("skillmix_utils").joinpath("data", "prompts", version, f"{name}.txt")
    text = path.read_text(encoding="utf-8")
    return text[:-1] if text.endswith("\n") else text


def _skills_str(skills: Sequence[SkillLike]) -> str:
    return ", ".join(s.name for s in skills)


def skills_defs_and_examples_simple(skills: Iterable[SkillLike]) -> str:
    """One line per skill: `**{name}**: {definition} For example, {example}`."""
    return "\n".join(f"**{s.name}**: {s.definition} For example, {s.example}" for s in skills)


def skills_defs(skills: Iterable[SkillLike]) -> str:
    """One line per skill without the example: `**{name}**: {definition}`."""
    return "\n".join(f"**{s.name}**: {s.definition}" for s in skills)


def generation_turn1(skills: Sequence[SkillLike], topic: str) -> str:
    """The first user turn: asks for a text in the context of `topic` showing all `skills`.

    >>> from types import SimpleNamespace as S
    >>> m = S(name="metaphor", definition="A comparison.", example="Time is a thief.")
    >>> print(generation_turn1([m], "Knots").split("concepts:")[1].splitlines()[1])
    **metaphor**: A comparison. For example, Time is a thief.
    """
    return load_template("generation_turn1").format(
        topic=topic, skills_str=_skills_str(skills),
        skills_defs_and_examples_simple=skills_defs_and_examples_simple(skills))


def generation_turn2(k: int) -> str:
    """The second user turn: improve the answer, in at most `sentence_limit(k)` sentences."""
    return load_template("generation_turn2").format(
        num_sentences_str=number_words(sentence_limit(k)))


SKILL_CRITERIA = ("Correctly illustrates", "Contains")


def rubric_items(skills: Sequence, topic: str, skill_criterion: str = "Correctly illustrates"
                 ) -> list[str]:
    """The k + 3 criteria in rubric order: one per skill (`skill_criterion` and the name in
    lower case), then topic, sense and length. `skills` are names (or objects with `.name`).
    `skill_criterion` is "Correctly illustrates", or "Contains" as the reference code's
    open-weight grader prompt words it (a grader's `skill_criterion`).

    >>> rubric_items(["Metaphor", "modus ponens", "red herring"], "Knots")[-3:]
    ['Pertains to Knots', 'Text makes sense', 'At most two sentences']
    >>> rubric_items(["Metaphor"], "Knots", skill_criterion="Contains")[0]
    'Contains metaphor'
    """
    if skill_criterion not in SKILL_CRITERIA:
        raise ValueError(f"unknown skill criterion {skill_criterion!r}: use one of {SKILL_CRITERIA}")
    names = [getattr(s, "name", s) for s in skills]
    return ([f"{skill_criterion} {n.lower()}" for n in names]
            + [f"Pertains to {topic}", "Text makes sense",
               f"At most {number_words(sentence_limit(len(names)))}"])


def grading_prompt(skills: Sequence[SkillLike], topic: str, answer: str,
                   variant: str = "table", skill_criterion: str = "Correctly illustrates") -> str:
    """The grading prompt for a student's `answer`.

    `variant` is a grading method of data/grader_methods.yaml, which names the template:
    "table" is the published GPT-4 prompt (definitions with examples, a rubric table);
    "point_earned" is the open-weight grader variant (definitions only, 'Point earned: 1' lines
    and a final 'Grade:'). `skill_criterion` words the skill criteria (`rubric_items`).

    >>> from types import SimpleNamespace as S
    >>> m = S(name="Metaphor", definition="A comparison.", example="Time is a thief.")
    >>> p = grading_prompt([m], "Knots", "A knot is a promise.", variant="point_earned")
    >>> p.split("criteria: ")[1].split(". For each")[0]
    'Correctly illustrates metaphor, Pertains to Knots, Text makes sense, At most one sentence'
    """

    entry = method(variant)
    if entry.parser != "rubric_reply":
        raise ValueError(f"grading method {variant!r} is not asked with one prompt")
    k = len(skills)
    return load_template(entry.prompt).format(
        num_sentences_str=number_words(sentence_limit(k)), topic=topic,
        skills_str=_skills_str(skills), student_answer=answer,
        rubric_items=", ".join(rubric_items([s.name for s in skills], topic, skill_criterion)),
        skills_defs=skills_defs(skills),
        skills_defs_and_examples_simple=skills_defs_and_examples_simple(skills))


def judge_prompts(skills: Sequence[SkillLike], topic: str, answer: str) -> list[str]:
    """The k + 3 yes/no questions of the local judge for one text, in rubric order.

    >>> from types import SimpleNamespace as S
    >>> m = S(name="metaphor", definition="A comparison.", example="Time is a thief.")
    >>> qs = judge_prompts([m], "Knots", "A knot is a promise.")
    >>> len(qs), qs[0].splitlines()[-1]
    (4, 'Does the text meet this criterion: "Correctly illustrates metaphor"? Answer with Yes or No.')
    """
    template = load_template("judge_yes_no")
    fields = dict(num_sentences_str=number_words(sentence_limit(len(skills))), topic=topic,
                  skills_str=_skills_str(skills), skills_defs=skills_defs(skills),
                  student_answer=answer)
    return [template.format(criterion=c, **fields)
            for c in rubric_items([s.name for s in skills], topic)]


def method_prompt(method_name: str, skills, topic: str, answer: str,
                  skill_criterion: str = "Correctly illustrates") -> str:
    """What a grader of this method is sent for one text (the local judge's k + 3 questions are
    joined by a blank line): the prompt part of a grading's identity. `skill_criterion` words
    the skill criteria of a rubric prompt (the local judge asks with its own wording)."""
    m = method(method_name)
    if m.parser == "yes_no_probabilities":
        return "\n\n".join(judge_prompts(skills, topic, answer))
    return grading_prompt(skills, topic, answer, variant=method_name, skill_criterion=skill_criterion)
