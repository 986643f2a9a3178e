"""One run per output folder: a stage or `skillmix run` holds `<folder>/.skillmix.lock` while
it works, so two runs never pay for the same requests or overwrite each other's notebooks.

A second run on a folder in use refuses at once (exit status 5) with one line naming the holder:
its pid, its command and since when (read from `.skillmix.lock.json`). The lock is an OS lock
(fcntl through `filelock`), so a run that was killed releases it with its process: the next run
takes over and says so. Processes a run starts itself (the notebook kernels of `skillmix run`,
the `skillmix train` subprocess) inherit the lock through `SKILLMIX_HELD_LOCKS`.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

from skillmix_utils.core.errors import FolderInUse
from skillmix_utils.core.redact import redact

HELD_ENV = "SKILLMIX_HELD_LOCKS"
LOCK_NAME, INFO_NAME = ".skillmix.lock", ".skillmix.lock.json"


def _held_here(folder: Path) -> bool:
    held = [Path(p) for p in os.environ.get(HELD_ENV, "").split(os.pathsep) if p]
    return any(folder == h or h in folder.parents for h in held)


def _holder(info: Path) -> dict:
    try:
        return json.loads(info.read_text())
    except (OSError, ValueError):
        return {}


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, TypeError):
        return False
    return True


def _command() -> str:

    args = [Path(sys.argv[0]).name if sys.argv else "python", *sys.argv[1:]]
    return redact(" ".join(args))[:200]


@contextlib.contextmanager
def output_lock(folder, command: str | None = None):
    """Hold the lock of output folder `folder` for the `with` block (creating the folder).

    Raises `FolderInUse` when another process holds it; a lock left by a killed run is taken
    over with a note on stderr. Re-entrant for this process and the processes it starts.
    """
    from filelock import FileLock, Timeout

    folder = Path(folder).resolve()
    if _held_here(folder):
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    info = folder / INFO_NAME
    lock = FileLock(str(folder / LOCK_NAME), thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        h = _holder(info)
        who = (f"pid {h.get('pid', '?')} ({h.get('command', '?')}) since {h.get('since', '?')}"
               if h else "another process")
        raise FolderInUse(f"output folder in use by {who}; wait for it to finish or stop it "
                          "(one run per output folder)", file=str(folder)) from None
    old = _holder(info)
    if old and old.get("pid") != os.getpid():
        state = "killed" if not _alive(old.get("pid")) else "stopped"
        print(f"skillmix: taking over the lock of a {state} run (pid {old.get('pid')}, "
              f"{old.get('command')}, since {old.get('since')})", file=sys.stderr, flush=True)
    info.write_text(json.dumps({"pid": os.getpid(), "command": command or _command(),
                                "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
    before = os.environ.get(HELD_ENV)
    os.environ[HELD_ENV] = os.pathsep.join(p for p in (before, str(folder)) if p)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(HELD_ENV, None)
        else:
            os.environ[HELD_ENV] = before
        with contextlib.suppress(OSError):
            info.unlink()
        lock.release()
