"""Local models in memory: the one registry of loaded hf: models and vLLM engines.

A backend `hold`s what it loaded under a key (what was loaded and how), so equal backends share
one copy. `release(holder)` drops a backend's holds (its `close()`, and its garbage collection),
and a model that nobody holds any more is freed at once: its `free` hook runs (a vLLM engine is
shut down), the last references go, `gc.collect()` runs and the CUDA cache is emptied. A stage
closes its backends when it is done (`StageRun.release` after each student, `StageRun.close`),
so a stage with two local students never holds both.
"""
from __future__ import annotations

import gc
import itertools
import logging
import sys
import threading
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger("skillmix.llm")


@dataclass
class _Entry:
    value: object
    free: Callable | None = None
    holders: set = field(default_factory=set)


_MODELS: dict = {}
# Loading happens under the lock, so two threads asking for one model load it once.
_LOCK = threading.RLock()
_HOLDERS = itertools.count(1)


def new_holder() -> int:
    """A fresh holder id (one per backend)."""
    return next(_HOLDERS)


def hold(key, holder: int, load: Callable, free: Callable | None = None):
    """The model stored under `key`, made by `load()` if nobody holds it; `holder` keeps it
    in memory until `release(holder)`. `free(value)` runs when the last holder lets go."""
    with _LOCK:
        entry = _MODELS.get(key)
        if entry is None:
            entry = _MODELS[key] = _Entry(load(), free)
        entry.holders.add(holder)
        return entry.value


def release(holder: int) -> int:
    """Drop `holder`'s holds and free every model nobody holds any more; returns how many."""
    with _LOCK:
        gone = []
        for key in list(_MODELS):
            _MODELS[key].holders.discard(holder)
            if not _MODELS[key].holders:
                gone.append(_MODELS.pop(key))
    if not gone:
        return 0
    n = len(gone)
    _free(gone)
    gc.collect()     # modules hold reference cycles: collect them now, not at some later time
    torch = sys.modules.get("torch")   # never imported here just to empty a cache
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
    return n


def _free(entries: list) -> None:
    # A function of its own, so that no local name keeps a model alive past gc.collect().
    while entries:
        entry = entries.pop()
        if entry.free is not None:
            try:
                entry.free(entry.value)
            except Exception as exc:  # noqa: BLE001 - the stage's results are already saved
                log.warning("freeing a local model failed: %s", exc)


def held() -> list:
    """The keys of the models in memory now."""
    with _LOCK:
        return list(_MODELS)
