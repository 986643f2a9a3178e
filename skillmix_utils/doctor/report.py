"""The doctor's verdicts: one `Check` per row, run so that a broken check is that row's FAIL,
printed as one table and written as JSON.

Statuses: PASS; WARN (works, but not as fast or as intended: e.g. flash-attn absent, sdpa used);
FAIL (a study on this machine would crash or compute wrong numbers); SKIP (not applicable here,
with the reason). The exit status is 1 when any row FAILs.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

STATUSES = ("PASS", "WARN", "FAIL", "SKIP")


@dataclass
class Check:
    name: str
    status: str      # PASS, WARN, FAIL, SKIP
    detail: str
    seconds: float | None = None


def guarded(name: str, fn, *args, **kwargs) -> Check:
    """`fn(*args)`'s Check, timed; an exception is this check's FAIL naming the error (the
    other checks still run)."""
    t0 = time.perf_counter()
    try:
        check = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a broken check is reported, the rest still run
        check = Check(name, "FAIL", f"{type(exc).__name__}: {exc}"[:400])
    check.seconds = round(time.perf_counter() - t0, 1)
    return check


def table(vers: dict[str, str], checks: list[Check]) -> str:
    """Versions and checks as one plain-text table."""
    rows = [(k, "", v) for k, v in vers.items()] + [(c.name, c.status, c.detail) for c in checks]
    w0 = max(len(r[0]) for r in rows)
    lines = [f"{'item':<{w0}}  {'check':<5}  detail", f"{'-' * w0}  -----  ------"]
    lines += [f"{a:<{w0}}  {b:<5}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def exit_status(checks: list[Check]) -> int:
    """1 when any check failed, else 0."""
    return 1 if any(c.status == "FAIL" for c in checks) else 0


def write_json(path: str | Path, vers: dict[str, str], checks: list[Check], **extra) -> Path:
    """The table as JSON: versions, checks (name, status, detail, seconds), exit status."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"versions": vers, "checks": [asdict(c) for c in checks],
                                "exit_status": exit_status(checks), **extra}, indent=2))
    return path
