"""Reading rows out of a grader's reply: the shapes real graders write and the values in cells.

`grading.parse_grade` calls these, then maps the rows onto the rubric. Three shapes:
- `read_tables`: markdown tables (with or without outer pipes or the |---| line); the label
  column is the one headed "Criteria" (else the first), the points column the one headed
  "... Earned" (else "Points"/"Score", never "Possible"/"Max"), else the first readable cell.
- `read_point_earned`: "Point earned: 1" items (the open-weight grader prompt) and "Grade: N".
- `read_lines`: "criterion: 1" lines, the last resort.

    >>> [(r.shape, r.rows) for r in read_lines("- Text makes sense: 1\\n- Total: 4/5")]
    [('lines', [('Text makes sense', '1'), ('Total', '4/5')])]
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

_NUM = r"(\d+(?:\.\d+)?|\.\d+|½)"
_VALUE = re.compile(_NUM + r"\s*(?:(?:/|out\s+of|of)\s*" + _NUM + r")?", re.I)
_MARKS = {"✓": 1.0, "✔": 1.0, "✅": 1.0, "✗": 0.0, "✘": 0.0, "❌": 0.0}


def _num(s: str) -> float:
    return 0.5 if s == "½" else float(s)


def read_value(cell: str, *, bounded: bool = True) -> float | None:
    """The number in a points cell, normalised by a denominator; None if none or out of [0, 1].

    >>> [read_value(c) for c in ["1", "**0.5**", "1/1", "0 / 1", "1 point", "N/A", "2", "✓", "-1"]]
    [1.0, 0.5, 1.0, 0.0, 1.0, None, None, 1.0, None]
    """
    m = _VALUE.search(cell)
    if m is not None and bounded and cell[:m.start()].rstrip().endswith(("-", "\u2212")):
        return None            # "-1": a negative point is no point we know how to count
    if m is None:
        for mark, v in _MARKS.items():
            if mark in cell:
                return v
        return None
    value = _num(m.group(1))
    if m.group(2) is not None:
        den = _num(m.group(2))
        if bounded:
            if den <= 0:
                return None
            value = value / den
    if bounded and not 0.0 <= value <= 1.0:
        return None
    return value


_TOTAL_LABEL = re.compile(r"^\W*+(?:grand\s++)?total\b", re.I)
_GRADE_LABEL = re.compile(r"^\W*+(?:final\s++|overall\s++)?(?:grade|score)\W*+$", re.I)


def is_total(label: str) -> bool:
    """Whether a row label is the grader's total ("Total Points Earned", "Grade", "Score")."""
    label = label.strip()
    return bool(_TOTAL_LABEL.match(label) or _GRADE_LABEL.match(label))


# ---------------------------------------------------------------------------------------------
# Shapes: each yields rows (label, value cell) and possibly a stated total

@dataclass
class Rows:
    shape: str
    rows: list[tuple[str, str]]
    stated_total: float | None = None
    notes: list[str] = field(default_factory=list)


# Possessive quantifiers (*+, ++) throughout: no regex here may backtrack, so that every reply
# is read in time linear in its length (a 2 KB reply once took minutes; docs/protocol.md §4).
_SEPARATOR = re.compile(r"^\s*+\|?\s*+:?-{2,}+:?\s*+(?:\|\s*+:?-{2,}+:?\s*+)*+\|?\s*+$")
_PIPE = re.compile(r"(?<!\\)\|")          # a cell border; "\|" is a pipe inside a cell
_MAX_CELLS = 16                          # cells of a row searched for a value (a rubric has 2-4)
MAX_TABLE_ROWS = 256                     # rows of one table read (its last ones; a rubric has k + 4)


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    if "\\|" not in line:
        return [c.strip() for c in line.split("|")]
    return [c.strip().replace("\\|", "|") for c in _PIPE.split(line)]


def read_tables(reply: str) -> list[Rows]:
    blocks, current = [], []
    for line in reply.splitlines():
        cells = _cells(line) if "|" in line else []
        if len(cells) >= 2:
            current.append((bool("-" in line and _SEPARATOR.match(line)), cells))
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    out = []
    for block in blocks:
        sep = next((i for i, (is_sep, _) in enumerate(block) if is_sep), None)
        header = block[sep - 1][1] if sep is not None and sep > 0 else None
        body = [cells for i, (is_sep, cells) in enumerate(block)
                if not is_sep and (sep is None or i != sep - 1)][-MAX_TABLE_ROWS:]
        label_col, points_col = 0, None
        if header:
            low = [h.lower() for h in header]
            label_col = next((i for i, h in enumerate(low)
                              if re.search(r"criteri|rubric|item|requirement|aspect", h)), 0)
            for pattern in (r"earned|awarded|given|received|achieved",
                            r"point|score|grade|mark"):
                points_col = next((i for i, h in enumerate(low) if i != label_col
                                   and re.search(pattern, h)
                                   and not re.search(r"possible|max|available|out of", h)), None)
                if points_col is not None:
                    break
        rows = []
        for cells in body:
            if len(cells) <= label_col:
                continue
            label = cells[label_col]
            if points_col is not None and points_col < len(cells):
                value = cells[points_col]
            else:   # no usable header: the first readable cell after the label
                rest = [c for i, c in enumerate(cells[:_MAX_CELLS]) if i != label_col]
                value = next((c for c in rest if c and read_value(c, bounded=False) is not None), "")
            rows.append((label, value))
        out.append(Rows("table", rows))
    return out


_POINT_EARNED = re.compile(r"points?\s++earned[\s*]*+(?:[:=\-][\s*]*+)?(" + _NUM
                           + r"(?:\s*+/\s*+" + _NUM + r")?)[*_]*+", re.I)
_GRADE = re.compile(r"\b(?:final\s++)?grade\b[\s*]*+[:=][\s*]*+" + _NUM, re.I)
_LIST_START = re.compile(r"^\s*(?:\d+[.)]|[-*+•]|#+|\*\*)")


def _line_head(line: str) -> str:
    # "1. Correctly illustrates metaphor: the grader's reason ..." -> the part before the colon,
    # so that a reason mentioning another skill does not confuse the match.
    head = re.split(r":|\s[-–—]\s", line, maxsplit=1)[0]
    return head if re.search(r"[A-Za-z]{3}", head) else line


def _item_label(segment: str, label_rank: Callable[[str], tuple]) -> str:
    """The line of a 'Point earned' item that names its criterion: the best by `label_rank`
    (from the rubric matcher), then list items, then the earliest (a label precedes its reason)."""
    lines = [l.strip() for l in segment.splitlines() if re.search(r"[A-Za-z]", l)]
    if not lines:
        return ""

    def rank(item):
        i, line = item
        matched, cued, score = label_rank(_line_head(line))
        return (matched, bool(_LIST_START.match(line)), cued, score, -i)
    return _line_head(max(enumerate(lines), key=rank)[1])


def read_point_earned(reply: str, label_rank: Callable[[str], tuple] = lambda s: (False, False, 0.0)
                      ) -> list[Rows]:
    """Rows of "Point earned: N" items and the final "Grade: N". `label_rank(text)` says how
    well a line names a criterion: (matches at all, has a cue word, score).

    >>> read_point_earned("1. Text makes sense: yes. Point earned: 1\\nGrade: 1")[0].rows
    [('1. Text makes sense', '1')]
    """
    matches = list(_POINT_EARNED.finditer(reply))
    if not matches:
        return []
    rows, prev = [], 0
    for m in matches:
        rows.append((_item_label(reply[prev:m.start()], label_rank), m.group(1)))
        prev = m.end()
    grades = list(_GRADE.finditer(reply[matches[-1].end():])) or list(_GRADE.finditer(reply))
    total = _num(grades[-1].group(1)) if grades else None
    return [Rows("point_earned", rows, total)]


# "label: 1", "label - 1/1", "label ... 0.5 points" at the end of a line. Searched from the end
# of short lines only (no nested lazy groups: a long line must not cost quadratic time).
_LINE_SCORE = re.compile(r"(?:[:=]|\s[-–—]|(?<!\.)\.{2,}+)[\s*_]*+(" + _NUM + r"(?:\s*+/\s*+"
                         + _NUM + r")?)[\s*_]*+(?:points?|pts?)?[\s.*_)]*+$", re.I)
_LINE_MARKER = re.compile(r"^\s*(?:\d+[.)]\s*|[-*+•]\s*)?")
_MAX_LINE = 400


def read_lines(reply: str) -> list[Rows]:
    rows = []
    for line in reply.splitlines():
        if len(line) > _MAX_LINE:
            continue
        m = _LINE_SCORE.search(line)
        if m is None:
            continue
        label = line[:m.start()]
        label = label[_LINE_MARKER.match(label).end():].strip(" *_")
        if re.search(r"[A-Za-z]", label):
            rows.append((label, m.group(1)))
    return [Rows("lines", rows)] if rows else []
