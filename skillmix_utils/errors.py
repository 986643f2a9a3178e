"""The one error type a user sees: it names the file and the field that are wrong.

The command line catches it, prints its message on one line and exits with status 2, so bad
input never ends in a traceback or a half-written output.
"""
from __future__ import annotations


class SkillmixError(Exception):
    """A user-facing error about some input.

    >>> str(SkillmixError("must be one of train, held_out", file="cat.yaml", field="skills[3].split"))
    'cat.yaml: skills[3].split: must be one of train, held_out'
    """

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.file, self.field, self.reason = file, field, message
        parts = [p for p in (file and str(file), field, message) if p]
        super().__init__(": ".join(parts))
