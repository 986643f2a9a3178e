"""The error types a user sees, and the exit status each one gives.

Every error names what is wrong on one line. The command line prints it as
`skillmix: error: <message>` and exits with the error's `exit_status`, so bad input never ends
in a traceback or a half-written output, and a script can tell a failed run from a finished one:

    status  meaning                                           error type
    0       finished: every planned item is made and graded
    1       finished with failed items (recorded; a re-run retries only them), or a notebook failed
    2       bad input: config, override, catalog, path, missing key (nothing was written)
    3       the budget is spent (what finished is saved; raise budget_usd and re-run)
    4       the provider refused the request: key, permission, unknown model, invalid request
    5       the output folder is in use by another skillmix run
    130     interrupted (Ctrl-C); what finished is saved, re-run to resume
"""
from __future__ import annotations

import contextlib
import errno

EXIT_OK, EXIT_FAILURES, EXIT_BAD_INPUT, EXIT_BUDGET, EXIT_REFUSED, EXIT_BUSY = 0, 1, 2, 3, 4, 5
EXIT_INTERRUPTED = 130


class SkillmixError(Exception):
    """A user-facing error about some input.

    >>> str(SkillmixError("must be one of train, held_out", file="cat.yaml", field="skills[3].split"))
    'cat.yaml: skills[3].split: must be one of train, held_out'
    """

    exit_status = EXIT_BAD_INPUT

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.file, self.field, self.reason = file, field, message
        parts = [p for p in (file and str(file), field, message) if p]
        super().__init__(" ".join(": ".join(parts).split()))   # always one line


class ItemsFailed(SkillmixError):
    """A stage ended with items whose calls still failed after the retries (they are recorded
    and a re-run retries them), or an endpoint failed everything and the stage stopped early."""
    exit_status = EXIT_FAILURES


class BudgetSpent(SkillmixError):
    """The study's or the run's budget is spent; what finished is saved."""
    exit_status = EXIT_BUDGET


class RequestRefused(SkillmixError):
    """The provider refused a request in a way no retry fixes (key, permission, model, request)."""
    exit_status = EXIT_REFUSED


class FolderInUse(SkillmixError):
    """Another skillmix process holds the output folder's lock."""
    exit_status = EXIT_BUSY


class DiskFull(SkillmixError):
    """A file could not be written: no space left, a quota, a file-size limit, a read-only
    file system. What was written before is intact; a re-run continues from it."""
    exit_status = EXIT_FAILURES


NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


def disk_full(exc: OSError, path=None) -> DiskFull | None:
    """The DiskFull error an OSError means (None for any other OSError), naming `path` (else
    the file the OSError names)."""
    if exc.errno not in NO_ROOM:
        return None
    where = path or exc.filename
    return DiskFull(f"cannot write: {exc.strerror or exc}; what was written before is kept: make "
                    "room and re-run the same command to continue", file=where and str(where))


@contextlib.contextmanager
def writing(path):
    """Turn "no space left" (and the like) while writing `path` into one `DiskFull` naming it."""
    try:
        yield
    except OSError as exc:
        err = disk_full(exc, path)
        if err is None:
            raise
        raise err from None


def exit_status_of(name: str) -> int | None:
    """The exit status of a skillmix error class by name (for errors raised inside a notebook).

    >>> exit_status_of("BudgetSpent"), exit_status_of("ValueError")
    (3, None)
    """
    for cls in (SkillmixError, ItemsFailed, BudgetSpent, RequestRefused, FolderInUse, DiskFull):
        if cls.__name__ == name:
            return cls.exit_status
    return None
