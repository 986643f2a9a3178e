"""Answer extraction: the text that counts in a model's reply (docs/protocol.md §3).

The published rule: the part after the **last** `Answer:` and before the **first following**
`Explanation`, stripped. Models also write `**Answer:**`, `Answer :`, quotes or markdown bold
around the text, or no markers at all; `extract_answer_with_rule` handles those and says which
rule applied, so a study can count (and re-examine) the replies that needed a fallback.

Rules, in the order they are tried:
- "answer_marker": the literal `Answer:` (the reference rule).
- "bold_answer_marker": `**Answer:**`, `**Answer**:`, `__Answer:__` and the like.
- "loose_answer_marker": `Answer :`, `answer:` or `ANSWER:` (any case, spaces before the colon).
- "no_marker_before_explanation": no answer marker; the text before the first `Explanation`.
- "no_marker": no marker of either kind; the whole reply.
- "empty": whichever of the above applied, nothing was left.
The end of the answer is the first `Explanation` (as written, the reference cut) or, in any other
case, `explanation:` with its colon, whichever comes first; "the explanation of ..." inside an
answer does not end it. "Last" is by position over every kind of marker (`Improved Answer:`
and `**Final Answer:**` count too); the rule reported is the kind of that last marker.
After the cut, wrapping quotes (straight or curly) and wrapping markdown bold/italics are removed
when they enclose the whole text, and a dangling `**` left by a bold `**Explanation:**` is dropped.

`rule="reference"` (a writer's `answer_rule`, set by the `reference` protocol preset) is the
reference code's extraction to the character instead: `reply.split("Answer:")[-1]`, cut at the
first "Explanation", stripped; nothing else (no other markers, no unwrapping: a quoted answer
keeps its quotes, as the reference's `text_1` does). Its rule name is "reference_marker" when
the reply has `Answer:`, else "reference_no_marker" (the reference keeps the whole reply then).
"""
from __future__ import annotations

import re
from typing import NamedTuple


class Extraction(NamedTuple):
    text: str
    rule: str


_STRICT = re.compile(r"Answer:")
# A bold marker: the word Answer with ** or __ around it, the colon inside or outside.
# Possessive quantifiers (*+, ++): no backtracking, so any reply is read in linear time.
_BOLD = re.compile(r"(\*\*|__)\s*+(?:[A-Za-z]++\s++)?Answer\s*+:?\s*+\1\s*+:?"
                   r"|(\*\*|__)\s*+(?:[A-Za-z]++\s++)?Answer\s*+:", re.I)
_LOOSE = re.compile(r"\banswer\s*+:", re.I)
# The reference cut is at "Explanation" (case as written); in other cases only a marker with
# its colon counts, so that "the explanation of bees" inside an answer does not cut it short.
_EXPLANATION_LOOSE = re.compile(r"\bexplanation\s*+:", re.I)
_EXPLANATION_EXACT = re.compile(r"Explanation")


def _explanation(text: str) -> re.Match | None:
    found = [m for m in (_EXPLANATION_EXACT.search(text), _EXPLANATION_LOOSE.search(text)) if m]
    return min(found, key=lambda m: m.start()) if found else None


_QUOTE_PAIRS = [('"', '"'), ("\u201c", "\u201d"), ("'", "'"), ("\u2018", "\u2019"), ("\u00ab", "\u00bb")]
_WRAPPERS = ["***", "**", "__", "*", "_", "`"]


def _unwrap(text: str) -> str:
    """Strip quote marks or markdown emphasis that enclose the whole text, repeatedly.

    >>> _unwrap('**"The hive hums."**')
    'The hive hums.'
    >>> _unwrap('"Stay," she said, "or go."')
    '"Stay," she said, "or go."'
    """
    while True:
        before = text
        text = text.strip()
        for w in _WRAPPERS:
            inner = text[len(w):-len(w)] if len(text) > 2 * len(w) else None
            if inner is not None and text.startswith(w) and text.endswith(w) and w not in inner:
                text = inner.strip()
                break
        for open_, close in _QUOTE_PAIRS:
            if len(text) >= 2 and text[0] == open_ and text[-1] == close:
                inner = text[1:-1]
                # Only a true wrapper: the same marks do not occur inside (a dialogue like
                # "Stay," she said, "or go." starts and ends with quotes but is not wrapped).
                if open_ not in inner and close not in inner:
                    text = inner.strip()
                    break
        if text == before:
            return text


def _tidy(text: str) -> str:
    """Strip, drop marks the cut left dangling, then unwrap.

    >>> _tidy(' "Bees dance."\\n\\n**')      # cut before "**Explanation:**"
    'Bees dance.'
    >>> _tidy('Bees dance.**\\n\\n')         # from "**Answer: Bees dance.**"
    'Bees dance.'
    """
    text = text.strip()
    if text.endswith("#"):                   # a heading "## Explanation" leaves "##"
        text = text.rstrip("#").rstrip()
    for mark in ("**", "__"):
        if text.count(mark) % 2 == 1:
            if text.endswith(mark):
                text = text[: -len(mark)].rstrip()
            elif text.startswith(mark):
                text = text[len(mark):].lstrip()
    return _unwrap(text)


def _reference(reply: str) -> Extraction:
    """The reference code's extraction (`rule="reference"`, see the module docstring).

    >>> _reference('Sure. Answer: "Bees dance."\\nExplanation: ...')
    Extraction(text='"Bees dance."', rule='reference_marker')
    """
    text = reply.split("Answer:")[-1].split("Explanation")[0].strip()
    if not text:
        return Extraction(text, "empty")
    return Extraction(text, "reference_marker" if "Answer:" in reply else "reference_no_marker")


def extract_answer_with_rule(reply: str | None, rule: str = "improved") -> Extraction:
    """The answer text and the rule that found it (`rule="reference"`: the reference code's
    extraction, see the module docstring).

    >>> extract_answer_with_rule("Answer: Bees dance.\\nExplanation: a metaphor.")
    Extraction(text='Bees dance.', rule='answer_marker')
    >>> extract_answer_with_rule("Sure!\\n\\n**Answer:** \\"Bees dance.\\"\\n\\n**Explanation:** ...")
    Extraction(text='Bees dance.', rule='bold_answer_marker')
    >>> extract_answer_with_rule("Answer : Bees dance. Explanation: ...")
    Extraction(text='Bees dance.', rule='loose_answer_marker')
    >>> extract_answer_with_rule("\\u201cBees dance.\\u201d\\n\\nExplanation: ...")
    Extraction(text='Bees dance.', rule='no_marker_before_explanation')
    >>> extract_answer_with_rule("Bees dance.")
    Extraction(text='Bees dance.', rule='no_marker')
    >>> extract_answer_with_rule("Answer:\\nExplanation: I could not.")
    Extraction(text='', rule='empty')
    """
    reply = reply or ""
    if rule == "reference":
        return _reference(reply)
    if rule != "improved":
        raise ValueError(f"unknown answer rule {rule!r}: use 'improved' or 'reference'")
    start, rule = None, None
    for pattern, name in ((_BOLD, "bold_answer_marker"), (_STRICT, "answer_marker"),
                          (_LOOSE, "loose_answer_marker")):
        matches = list(pattern.finditer(reply))
        if matches:
            end = matches[-1].end()
            # The last marker of any kind wins; among markers ending at the same place, the
            # strict one names the rule (a bold marker contains a strict one).
            if start is None or end > start:
                start, rule = end, name
    if start is not None:
        rest = reply[start:]
        cut = _explanation(rest)
        text = rest[:cut.start()] if cut else rest
    else:
        cut = _explanation(reply)
        text, rule = (reply[:cut.start()], "no_marker_before_explanation") if cut else (reply, "no_marker")
    text = _tidy(text)
    return Extraction(text, rule if text else "empty")


def extract_answer(reply: str | None) -> str:
    """The answer text of a reply (see `extract_answer_with_rule` for the rules).

    >>> extract_answer("Answer: First try.\\nExplanation: meh.\\nAnswer: Better.\\nExplanation: ok")
    'Better.'
    """
    return extract_answer_with_rule(reply).text
