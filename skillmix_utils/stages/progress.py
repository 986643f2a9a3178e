"""Watching a long stage: items done of planned, failures, dollars, rate and ETA.

A stage reports through one `StageProgress` (stages/context.py makes it): `phase(name, total)`
opens a line ("teacher hf:smollm2-135m-instruct: write", 160 texts) and `advance(n, failed=,
usd=)` moves it. The same state is shown three ways:

* `<out>/.runner/progress.json`, rewritten at most every half second: `skillmix run` reads it
  while papermill executes the notebook and draws it in the terminal (`watch_file`);
* inside a Jupyter kernel, one display updated in place: one compact output per stage, not a
  scroll of bars;
* in a terminal (`skillmix generate-data` ...), a tqdm bar per phase on a TTY, else one line
  every `SKILLMIX_PROGRESS_EVERY` seconds (default 30) and at the end of each phase.

The views are refreshed by a clock too, not only when items finish: a request that has waited
longer than that interval for its reply (a stalled server) shows as "waiting M:SS for a reply"
(`watch(backend)`: anything with `waiting_s`).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

EVERY_ENV = "SKILLMIX_PROGRESS_EVERY"


def every_seconds(default: float = 30.0) -> float:
    """How often a non-TTY stream gets a progress line (env SKILLMIX_PROGRESS_EVERY)."""
    try:
        return max(0.0, float(os.environ.get(EVERY_ENV, default)))
    except ValueError:
        return default


def _clock(seconds: float | None) -> str:
    """
    >>> _clock(3725), _clock(59), _clock(None)
    ('1:02:05', '0:59', '?')
    """
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def phase_line(p: dict, now: float | None = None) -> str:
    """One phase as one line.

    >>> phase_line({"name": "teacher x: write", "done": 8, "total": 16, "unit": "texts",
    ...   "failed": 1, "usd": 0.5, "estimate_usd": 2.0, "started": 0.0, "updated": 4.0}, now=4.0)
    'teacher x: write: 8/16 texts · 1 failed · $0.5000 of est. $2.00 · 2.0 texts/s · ETA 0:04'
    """
    now = p.get("updated", time.time()) if now is None else now
    elapsed = max(1e-9, (p.get("ended") or now) - p["started"])
    rate = p["done"] / elapsed if p["done"] else 0.0
    left = (p["total"] - p["done"]) / rate if rate else None
    parts = [f"{p['name']}: {p['done']}/{p['total']} {p['unit']}"]
    if p.get("failed"):
        parts.append(f"{p['failed']} failed")
    if p.get("usd") or p.get("estimate_usd"):
        est = f" of est. ${p['estimate_usd']:.2f}" if p.get("estimate_usd") else ""
        parts.append(f"${p.get('usd', 0.0):.4f}{est}")
    parts.append(f"{rate:.1f} {p['unit']}/s" if rate >= 0.1 else f"{rate * 60:.1f} {p['unit']}/min")
    parts.append(f"done in {_clock(elapsed)}" if p.get("ended") else f"ETA {_clock(left)}")
    if p.get("waiting_s") and not p.get("ended"):
        parts.append(f"waiting {_clock(p['waiting_s'])} for a reply")
    return " · ".join(parts)


def in_kernel() -> bool:
    """True inside a Jupyter kernel (not merely when IPython was imported, as tests do)."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython  # a kernel has imported it already

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class StageProgress:
    """The progress of one stage run (see the module docstring)."""

    def __init__(self, stage: str, out_dir: Path | None = None, stream=None,
                 estimate_usd: float | None = None, show: bool = True):
        self.stage, self.estimate_usd = stage, estimate_usd
        self.path = Path(out_dir) / ".runner" / "progress.json" if out_dir else None
        self.stream = stream or sys.stderr
        self.phases: list[dict] = []
        self._written = 0.0
        self._printed: dict[int, float] = {}
        self._bars: dict[int, object] = {}
        self._handle = None
        self.kernel = show and in_kernel()
        self.tty = show and not self.kernel and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.show = show
        self._watched: list = []              # backends: their `waiting_s`
        self._mutex = threading.RLock()       # the clock thread and the stage both emit
        self._clock: threading.Thread | None = None
        self._stopped = threading.Event()

    def watch(self, source) -> None:
        """Show how long `source`'s oldest request in flight has waited (its `waiting_s`)."""
        self._watched.append(source)

    def _tick(self) -> None:
        while not self._stopped.wait(max(0.5, min(every_seconds(), 5.0))):
            self._emit()

    def _waiting(self) -> float:
        """The longest wait for a reply among the watched backends, once it is worth saying
        (longer than the progress interval), else 0."""
        wait = max((getattr(w, "waiting_s", 0.0) or 0.0 for w in self._watched), default=0.0)
        return wait if wait >= max(1.0, every_seconds()) else 0.0

    # --- what stages call -------------------------------------------------------------------
    def phase(self, name: str, total: int, unit: str = "texts") -> int:
        """Open a phase of `total` items; returns its index for `advance`."""
        now = time.time()
        self.phases.append({"name": name, "total": int(total), "done": 0, "failed": 0,
                            "usd": 0.0, "unit": unit, "started": now, "updated": now, "ended": None,
                            "estimate_usd": self.estimate_usd})
        self._emit(force=True)
        if self._clock is None and (self.show or self.path is not None):
            self._clock = threading.Thread(target=self._tick, daemon=True,
                                           name="skillmix-progress")
            self._clock.start()
        return len(self.phases) - 1

    def advance(self, n: int = 1, failed: int = 0, usd: float = 0.0, index: int | None = None) -> None:
        """Count `n` more items done (of which `failed` failed) that cost `usd`."""
        if not self.phases:
            return
        p = self.phases[-1 if index is None else index]
        p["done"] = min(p["total"], p["done"] + n) if p["total"] else p["done"] + n
        p["failed"] += failed
        p["usd"] += usd
        p["updated"] = time.time()
        if p["done"] >= p["total"]:
            p["ended"] = p["updated"]
        self._emit(force=p["ended"] is not None)

    def close(self) -> None:
        """End every open phase (a stopped stage shows where it stopped) and flush the views."""
        self._stopped.set()
        now = time.time()
        for p in self.phases:
            p["ended"] = p["ended"] or now
        self._emit(force=True)
        with self._mutex:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()

    # --- the views --------------------------------------------------------------------------
    def state(self) -> dict:
        return {"stage": self.stage, "pid": os.getpid(), "updated": time.time(), "phases": self.phases}

    def _emit(self, force: bool = False) -> None:
        with self._mutex:
            self._emit_locked(force)

    def _emit_locked(self, force: bool) -> None:
        now = time.time()
        if self._watched:
            wait = self._waiting()
            open_ = [p for p in self.phases if not p["ended"]]
            for p in self.phases:
                p["waiting_s"] = wait if open_ and p is open_[-1] else 0.0
        if self.path is not None and (force or now - self._written >= 0.5):
            self._written = now
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(self.state()))
                tmp.replace(self.path)
            except OSError:
                pass        # progress is a view; it must never stop a stage
        if not self.show:
            return
        if self.kernel:
            self._kernel_view()
        elif self.tty:
            self._bars_view()
        else:
            self._lines_view(now, force)

    def _kernel_view(self) -> None:
        from IPython.display import display

        text = "\n".join(phase_line(p) for p in self.phases)
        if self._handle is None:
            self._handle = display({"text/plain": text}, raw=True, display_id=True)
        else:
            self._handle.update({"text/plain": text}, raw=True)

    def _bars_view(self) -> None:
        from tqdm import tqdm

        for i, p in enumerate(self.phases):
            bar = self._bars.get(i)
            if bar is None:
                bar = self._bars[i] = tqdm(total=p["total"], desc=p["name"], unit=p["unit"][:-1] or "it",
                                           file=self.stream, dynamic_ncols=True)
            bar.n = p["done"]
            waiting = (f", waiting {_clock(p['waiting_s'])} for a reply"
                       if p.get("waiting_s") and not p["ended"] else "")
            bar.set_postfix_str(f"failed {p['failed']}, ${p['usd']:.4f}{waiting}", refresh=True)
            if p["ended"]:
                bar.close()

    def _lines_view(self, now: float, force: bool) -> None:
        every = every_seconds()
        for i, p in enumerate(self.phases):
            last = self._printed.get(i)
            if last == -1:
                continue
            if (p["ended"]) or last is None or now - last >= every:
                print(f"skillmix: {phase_line(p, now)}", file=self.stream, flush=True)
                self._printed[i] = -1 if p["ended"] else now


def read_state(path: Path) -> dict | None:
    """The progress file's state, or None when there is none (yet) or it is half written."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


class watch_file:
    """`with watch_file(path, label):` draws a progress file in the terminal while the body runs
    (tqdm bars on a TTY, else a line every SKILLMIX_PROGRESS_EVERY seconds per phase)."""

    def __init__(self, path: Path, label: str, stream=None, poll: float = 0.5):
        self.path, self.label, self.poll = Path(path), label, poll
        self.stream = stream or sys.stdout
        self.spent_usd = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.view = StageProgress(label, None, stream=self.stream)
        self.view.kernel = False
        self.view.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def __enter__(self):
        self.path.unlink(missing_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        self._draw(final=True)
        for bar in self.view._bars.values():
            bar.close()

    def _draw(self, final: bool = False) -> None:
        state = read_state(self.path)
        if not state:
            return
        phases = state.get("phases", [])
        for p in phases:
            p["name"] = f"{self.label} {p['name']}"
            if final and not p.get("ended"):
                p["ended"] = state.get("updated")
        self.view.phases = phases
        self.spent_usd = sum(p.get("usd", 0.0) for p in phases)
        self.view._emit(force=final)

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self._draw()
