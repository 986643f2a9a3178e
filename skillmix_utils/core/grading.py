"""From a grader's reply to k + 3 points in rubric order (docs/protocol.md §4).

    >>> crit = rubric_items(["metaphor", "red herring"], "Beekeeping")
    >>> crit
    ['Correctly illustrates metaphor', 'Correctly illustrates red herring', 'Pertains to Beekeeping', 'Text makes sense', 'At most one sentence']
    >>> reply = '''Here's the grading table:
    ... | Criteria | Points Earned |
    ... |---|---|
    ... | Correctly illustrates metaphor | 1 |
    ... | Correctly illustrates red herring | 0 |
    ... | Pertains to Beekeeping | 1 |
    ... | Text makes sense | 1 |
    ... | At most one sentence | 1 |
    ... | Total Points Earned | 4 |
    ... Explanation: ...'''
    >>> g = parse_grade(reply, crit)
    >>> g.status, g.points, g.stated_total
    ('ok', [1.0, 0.0, 1.0, 1.0, 1.0], 4.0)

How a reply is read. Three shapes are tried in turn (read by `grader_replies`), the first that
maps every criterion wins: markdown tables ("table"), "Point earned: 1" items ("point_earned"),
and "criterion: 1" lines ("lines"). Each row (or item) is matched to a criterion **by its text**: its words are compared
with the criterion's key words (the skill name, the topic, "makes sense", "at most N sentences"),
with cue words deciding the kind when present ("illustrates", "pertains", "sense", "sentences").
A row whose best match is tied between criteria is left unmatched. Rows that match nothing are
ignored (noted); a "Total ..." row or a "Grade:" line is read into `stated_total`, never as a
criterion. Position is a fallback only: when exactly k + 3 rows are present and the rows matched
by text all sit at their own positions (or a single row and a single criterion are left over),
the leftovers are paired by position (`matched_by="text+position"`). If a criterion still has no
row, or its cell holds no readable value in [0, 1], the status is `parse_failed` and `points` is
None: a reply is never silently scored 0. What such a reply does give is kept: `partial` holds
the items it has (None for the rest) and `missing` names the criteria it lacks, so a "Point
earned" list of some items still yields those (the `scoring.unreadable` option decides what the
rest count: nothing, or 0 as the reference code's zero-fill). A reply that lacks only the length
row is `ok`, its length point None: the sentence count replaces that point anyway. A stated total
that disagrees with the rows is noted; the rows win.

Cell values: `1`, `0`, `0.5`, `1/1`, `0.5/1`, `1 out of 1`, `**1**`, `1 point`, `½`, and the
marks ✓ / ✗ (read as 1 / 0). A fraction is normalised by its denominator.

Bounds: every reading is linear in the reply's length (no regex here or in `grader_replies`
can backtrack; at most MAX_ROWS rows of one reading are matched), so any reply of 16 KB is read
in milliseconds; tests/core/test_parse_bounds.py checks it. A "|" inside a skill or topic name is
read as part of the name, not as a cell border.

The length verdict of a grader is later replaced by `count_sentences`, and the explicit-name
rule by `mentions_skill_name` (both in `text_rules`, re-exported here); this module only reads.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from skillmix_utils.core.grader_replies import (
    Rows,
    is_total,
    read_lines,
    read_point_earned,
    read_tables,
    read_value,
)
from skillmix_utils.core.prompts import rubric_items  # noqa: F401  (re-exported: the rubric lives with the prompts)
from skillmix_utils.core.text_rules import (  # noqa: F401  (re-exported)
    count_sentences,
    is_empty_text,
    mentions_skill_name,
    name_patterns,
)

__all__ = ["GradeParse", "rubric_items", "parse_grade", "count_sentences", "mentions_skill_name",
           "is_empty_text"]


@dataclass
class GradeParse:
    """The result of reading one grader reply.

    points: k + 3 floats in rubric order (the length point None when the reply has no length
        row: the sentence count gives it), or None when the reply could not be mapped.
    status: "ok" or "parse_failed".
    partial: when failed, the k + 3 points of the criteria the reply did give (None for the
        others); None when it gave none.
    missing: the criteria (rubric text) the reply gives no readable point for.
    stated_total: the grader's own total ("Total Points Earned" row, "Grade:"), if any.
    matched_by: "text" or "text+position" (None when failed).
    shape: "table", "point_earned" or "lines" (the shape that was read; None if none found).
    notes: what was odd: ignored rows, duplicate rows, a disagreeing total, why it failed.
    rows_matched: how many criteria were matched to a row by text (before any position fallback).
    """
    points: list[float] | None
    status: str
    stated_total: float | None = None
    matched_by: str | None = None
    shape: str | None = None
    notes: list[str] = field(default_factory=list)
    rows_matched: int = 0          # criteria matched to a row by its text
    partial: list[float | None] | None = None
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# ---------------------------------------------------------------------------------------------
# Words

_STOP = {"a", "an", "the", "of", "to", "and", "or", "in", "on", "for", "with", "by", "at", "is"}
_SKILL_CUES = {"illustrate", "illustrated", "illustrating", "illustration", "demonstrate",
               "demonstrates", "use", "usage", "correctly", "correct", "contain"}
_TOPIC_CUES = {"pertain", "pertaining", "topic", "relevance", "relevant", "context", "related"}
_SENSE_CUES = {"sense", "coherent", "coherence", "sensible", "logical", "meaningful"}


def _stem(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _tokens(text: str) -> list[str]:
    return [_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower())]


def _content(text: str) -> set[str]:
    return {t for t in _tokens(text) if t not in _STOP}


@dataclass
class _Target:
    kind: str                  # skill | topic | sense | length
    alternatives: list[set]    # key-word sets; the best covered one gives the score


def _targets(criteria: Sequence[str]) -> list[_Target]:
    k = len(criteria) - 3
    out = []
    for i, text in enumerate(criteria):
        if i < k:
            # "Correctly illustrates {skill}", or "Contains {skill}" (the reference's open-weight rubric)
            name = re.sub(r"^\s*(?:correctly\s+illustrates?|contains?)\s+", "", text, flags=re.I)
            alts = [_content(name)] + [_content(p) for p in name_patterns(name)]
            head = re.split(r"\(", name)[0]
            alts.append(_content(head))
            out.append(_Target("skill", [a for a in alts if a]))
        elif i == k:
            topic = re.sub(r"^\s*pertains?\s+to\s+", "", text, flags=re.I)
            out.append(_Target("topic", [a for a in [_content(topic)] if a]
                               + [{"pertain"}, {"topic"}, {"relevance"}, {"relevant"}]))
        elif i == k + 1:
            out.append(_Target("sense", [{"make", "sense"}, {"sense"}, {"coherent"}, {"coherence"},
                                         {"sensible"}]))
        else:
            out.append(_Target("length", [{"most", "sentence"}, {"sentence"}, {"length"}]))
    return out


def _cue_kinds(tokens: set[str]) -> set[str]:
    kinds = set()
    if tokens & _SKILL_CUES:
        kinds.add("skill")
    if tokens & _TOPIC_CUES:
        kinds.add("topic")
    if tokens & _SENSE_CUES:
        kinds.add("sense")
    if tokens & {"sentence", "length"} or {"at", "most"} <= tokens:
        kinds.add("length")
    return kinds


def _scores(label: str, targets: list[_Target]) -> list[float]:
    tokens = set(_tokens(label))
    scores = []
    for t in targets:
        best = 0.0
        for alt in t.alternatives:
            hit = len(alt & tokens)
            # Coverage of the key words, then (a tie-break far below any coverage step) how many
            # matched: "illustrates common sense reasoning" is the skill, not "makes sense".
            best = max(best, hit / len(alt) + 0.001 * hit)
        scores.append(best)
    # Cue words settle the kind when they point one way and that kind matches at all
    # ("Correctly illustrates metaphor (beekeeping)" is a skill row, not the topic row).
    cues = _cue_kinds(tokens)
    if len(cues) == 1:
        (kind,) = cues
        if any(s > 0 for s, t in zip(scores, targets) if t.kind == kind):
            scores = [s if t.kind == kind else 0.0 for s, t in zip(scores, targets)]
    return scores


def _label_rank(text: str, targets: list[_Target]) -> tuple[bool, bool, float]:
    """How well `text` names some criterion: (good enough, has a cue word, best score)."""
    score = max(_scores(text, targets), default=0.0)
    return score >= 0.5, bool(_cue_kinds(set(_tokens(text)))), score


# ---------------------------------------------------------------------------------------------
# Mapping rows onto criteria

MAX_ROWS = 200      # rows of one reading that are matched to criteria (a rubric has k + 3)


def _map(rows: Rows, criteria: Sequence[str], targets: list[_Target]) -> GradeParse:
    n = len(criteria)
    notes = list(rows.notes)
    stated_total = rows.stated_total
    crit_rows: list[tuple[str, str]] = []
    for label, value in rows.rows:
        if is_total(label):
            v = read_value(value, bounded=False)
            if v is not None:
                stated_total = v
            continue
        crit_rows.append((label, value))

    if len(crit_rows) > MAX_ROWS:    # no rubric has this many rows: read the last ones only
        notes.append(f"{len(crit_rows) - MAX_ROWS} rows before the last {MAX_ROWS} ignored")
        crit_rows = crit_rows[-MAX_ROWS:]

    # Each row claims the criterion it matches best, if that best is unique and good enough.
    claims: dict[int, list[int]] = {}
    row_scores = []
    seen: dict[str, list[float]] = {}
    for r, (label, _) in enumerate(crit_rows):
        scores = seen.get(label)
        if scores is None:
            scores = seen[label] = _scores(label, targets)
        row_scores.append(scores)
        best = max(scores) if scores else 0.0
        winners = [c for c, s in enumerate(scores) if s == best]
        if best < 0.5:
            notes.append(f"row ignored (matches no criterion): {label[:60]!r}")
        elif len(winners) > 1:
            notes.append(f"row ambiguous between criteria {winners}: {label[:60]!r}")
        else:
            claims.setdefault(winners[0], []).append(r)

    assigned: dict[int, int] = {}
    for c, rs in claims.items():
        if len(rs) == 1:
            assigned[c] = rs[0]
            continue
        values = {read_value(crit_rows[r][1]) for r in rs}
        top = max(row_scores[r][c] for r in rs)
        best_rows = [r for r in rs if row_scores[r][c] == top]
        if len(values) == 1 or len(best_rows) == 1:
            assigned[c] = best_rows[0]
            notes.append(f"{len(rs)} rows for criterion {c} ({criteria[c]!r}); kept row {best_rows[0]}")
        else:
            notes.append(f"conflicting rows for criterion {c} ({criteria[c]!r})")

    matched_by = "text"
    n_text = len(assigned)
    missing = [c for c in range(n) if c not in assigned]
    if missing and len(crit_rows) == n:
        free_rows = [r for r in range(n) if r not in assigned.values()]
        in_place = all(c == r for c, r in assigned.items())
        if len(free_rows) == len(missing) and (in_place or len(missing) == 1):
            for c, r in zip(missing, free_rows):
                assigned[c] = r
            matched_by = "text+position"
            notes.append(f"criteria {missing} matched by position")
            missing = []
    if missing:
        notes.append("no row for: " + "; ".join(repr(criteria[c]) for c in missing))

    points: list[float | None] = [None] * n
    for c, r in assigned.items():
        cell = crit_rows[r][1]
        points[c] = read_value(cell)
        if points[c] is None:
            notes.append(f"unreadable value {cell[:30]!r} for {criteria[c]!r}")
    missing = [c for c in range(n) if points[c] is None]
    lacking = [criteria[c] for c in missing]
    if missing and missing != [n - 1]:
        partial = points if any(p is not None for p in points) else None
        return GradeParse(None, "parse_failed", stated_total, None, rows.shape, notes, n_text,
                          partial=partial, missing=lacking)
    if missing:        # only the length point: the sentence count replaces it anyway
        notes.append(f"no length point ({criteria[n - 1]!r}): the sentence count gives it")
    total = sum(p for p in points if p is not None)
    if stated_total is not None and not missing and abs(total - stated_total) > 1e-9:
        notes.append(f"stated total {stated_total:g} disagrees with the rows ({total:g}); rows win")
    return GradeParse(points, "ok", stated_total, matched_by,
                      rows.shape, notes, n_text, missing=lacking)


def parse_grade(reply: str | None, criteria: Sequence[str]) -> GradeParse:
    """Read a grader's reply into points for `criteria` (from `rubric_items`), never raising
    on the reply's content.

    >>> crit = rubric_items(["metaphor"], "Knots")
    >>> parse_grade('''| Criteria | Points Earned |
    ... |---|---|
    ... | Text makes sense | **1** |
    ... | Correctly illustrates metaphor | 1/1 |
    ... | At most one sentence | 1 |
    ... | Pertains to Knots | 0.5 |
    ... | Total Points Earned | 4 |''', crit).points
    [1.0, 0.5, 1.0, 1.0]
    >>> g = parse_grade('''1. Correctly illustrates metaphor: yes. Point earned: 1
    ... 2. Pertains to Knots: yes. Point earned: 1
    ... 3. Text makes sense: no. Point earned: 0
    ... Grade: 2''', crit)
    >>> g.status, g.points, g.missing       # only the length row lacks: the count gives it
    ('ok', [1.0, 1.0, 0.0, None], ['At most one sentence'])
    >>> g = parse_grade("**Metaphor**: a knot as a promise. Point earned: 1\\nGrade: 1", crit)
    >>> g.status, g.points, g.partial, g.missing
    ('parse_failed', None, [1.0, None, None, None], ['Pertains to Knots', 'Text makes sense', 'At most one sentence'])
    """
    if len(criteria) < 4:
        raise ValueError(f"expected k + 3 >= 4 criteria, got {len(criteria)}")
    try:
        reply, criteria = _without_pipes_in_names(reply or "", list(criteria))
        return _parse(reply, criteria, _targets(criteria))
    except Exception as exc:  # pragma: no cover - a bug, but one reply must never crash a run
        return GradeParse(None, "parse_failed", notes=[f"internal error: {exc!r}"])


_NAME_PART = re.compile(r"^(?:correctly\s+illustrates?|pertains?\s+to)\s+(.*)$", re.I)
_STAND_IN = "\u00a6"       # broken bar: what a "|" inside a skill or topic name is read as


def _without_pipes_in_names(reply: str, criteria: list[str]) -> tuple[str, list[str]]:
    """A "|" inside a skill or topic name would split a table row: replace it, in the criteria
    and wherever the reply repeats the name (as written or escaped "\\|", any case), by a
    stand-in that is not a cell border.

    >>> r, c = _without_pipes_in_names("| Pertains to Cats | Dogs | 1 |", ["Pertains to Cats | Dogs"])
    >>> r, c
    ('| Pertains to Cats ¦ Dogs | 1 |', ['Pertains to Cats ¦ Dogs'])
    """
    if not any("|" in c for c in criteria):
        return reply, criteria
    names = {m.group(1) for c in criteria if "|" in c and (m := _NAME_PART.match(c))}
    for name in sorted(names, key=len, reverse=True):
        safe = name.replace("|", _STAND_IN)
        for written in (name, name.replace("|", "\\|")):
            reply = re.sub(re.escape(written), lambda _: safe, reply, flags=re.I)
    return reply, [c.replace("|", _STAND_IN) for c in criteria]


_TOTAL_LINE = re.compile(r"\btotal(?:\s++points?)?(?:\s++earned)?\W{0,6}?[:=]\W{0,4}(\d++(?:\.\d+)?)", re.I)


def _parse(reply: str, criteria: Sequence[str], targets: list[_Target]) -> GradeParse:
    candidates = (read_tables(reply)
                  + read_point_earned(reply, lambda text: _label_rank(text, targets))
                  + read_lines(reply))
    if not candidates:
        return GradeParse(None, "parse_failed",
                          notes=["no table, 'Point earned' items or scored lines found"])
    results = [_map(c, criteria, targets) for c in candidates]
    # A complete reading wins over one that lacks only the length point.
    ok = ([r for r in results if r.ok and not r.missing]
          or [r for r in results if r.ok])
    if ok:
        # The first shape that reads completely wins (tables, then 'Point earned', then lines);
        # among several complete tables the last one (a grader correcting itself writes it last).
        same = [r for r in ok if r.shape == ok[0].shape]
        chosen = same[-1]
        if chosen.stated_total is None:
            # "**Total Points Earned: 4**" written outside the table
            totals = list(_TOTAL_LINE.finditer(reply))
            if totals:
                chosen.stated_total = read_value(totals[-1].group(1), bounded=False)
                total = sum(p for p in chosen.points if p is not None)
                if chosen.stated_total is not None and not chosen.missing \
                        and abs(total - chosen.stated_total) > 1e-9:
                    chosen.notes.append(f"stated total {chosen.stated_total:g} disagrees with the rows "
                                        f"({total:g}); rows win")
        if len(same) > 1:
            chosen.notes.append(f"{len(same)} complete {chosen.shape} readings; the last one was used")
        return chosen
    # Report the failure of the reading that matched the most criteria: the one the grader meant.
    best = max(range(len(results)), key=lambda i: (results[i].rows_matched, -i))
    return results[best]
