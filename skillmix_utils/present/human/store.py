"""Human grades on disk: one append-only JSONL per rater, `human/grades/<rater>.jsonl`.

Each line is one grade, written (flushed and fsync'd, under a lock) the moment it is given:
`{"rater", "item", "record_id", "record_ids", "text_hash", "criterion", "n_criteria", "value",
"time"}` (`record_ids`: every record holding that very text, all of which get the grade).
A changed mind is a new line; the last line for (item, criterion) wins. A grade belongs to its
records and the text it was given on, not to the page's key (keys change with the study's
secret): a grade whose `text_hash` no longer matches the text (the record was rewritten) is not
used. One file per rater keeps raters apart: the page of one rater never reads another's file.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
from pathlib import Path

from skillmix_utils.core.errors import SkillmixError

RATER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def check_rater(name: str) -> str:
    """A rater name is a file name: letters, digits, `_ . -`, at most 40 characters.

    >>> check_rater("alice")
    'alice'
    >>> check_rater("../bob")
    Traceback (most recent call last):
    ...
    skillmix_utils.core.errors.SkillmixError: --rater: rater names are letters, digits, '_', '.' and '-' (at most 40), got '../bob'
    """
    if not isinstance(name, str) or not RATER_NAME.match(name):
        raise SkillmixError("rater names are letters, digits, '_', '.' and '-' (at most 40), "
                            f"got {name!r}", field="--rater")
    return name


class GradeStore:
    """The grades of one rater."""

    def __init__(self, folder: str | os.PathLike, rater: str):
        self.rater = check_rater(rater)
        self.path = Path(folder) / f"{rater}.jsonl"

    def append(self, item, criterion: int, value: int) -> dict:
        """Save one yes (1) / no (0) on criterion `criterion` of `item` (a HumanItem); durable
        when this returns."""
        from filelock import FileLock

        if value not in (0, 1) or isinstance(value, bool):
            raise SkillmixError(f"a grade is 0 or 1, got {value!r}", field="value")
        if not 0 <= criterion < len(item.criteria):
            raise SkillmixError(f"criterion {criterion} out of range 0..{len(item.criteria) - 1}",
                                field="criterion")
        line = {"rater": self.rater, "item": item.key, "record_id": item.record_id,
                "record_ids": list(item.record_ids or (item.record_id,)),
                "text_hash": item.text_hash, "criterion": criterion,
                "n_criteria": len(item.criteria), "value": value,
                "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock"), open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return line

    def lines(self) -> list[dict]:
        """Every saved line (a torn last line, from a crash mid-write, is skipped)."""
        if not self.path.exists():
            return []
        out = []
        for raw in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue
        return out

    def current(self, items=None) -> dict[str, dict[int, int]]:
        """item key -> {criterion: value}, last line wins; with `items`, only grades given on
        the text those items hold now (matched by record and text, under the items' keys)."""
        key_of = {}
        for it in items or ():
            for rid in it.record_ids or (it.record_id,):
                key_of[(rid, it.text_hash)] = it.key
        out: dict[str, dict[int, int]] = {}
        for g in self.lines():
            key = g.get("item")
            if items is not None:
                rids = g.get("record_ids") or [g.get("record_id")]
                key = next((key_of[(r, g.get("text_hash"))] for r in rids
                            if (r, g.get("text_hash")) in key_of), None)
                if key is None:
                    continue
            out.setdefault(key, {})[int(g["criterion"])] = int(g["value"])
        return out


def raters(folder: str | os.PathLike) -> list[str]:
    """The raters with a grades file in `folder`, sorted."""
    folder = Path(folder)
    return sorted(p.stem for p in folder.glob("*.jsonl")) if folder.is_dir() else []
