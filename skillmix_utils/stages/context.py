"""What every stage run shares: the resolved config on disk, backends, the budget, the plan.

A stage opens a `StageRun`; it writes `outputs/<study>/config.yaml` (not on a dry run), builds
backends lazily with the budget still left, and stops cleanly (`BudgetExhausted`) when a backend
answers `budget_exceeded`: what finished is already on disk, and a re-run resumes from it.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..config import ModelSpec, StudyConfig


class BudgetExhausted(Exception):
    """Raised inside a stage when the configured budget is spent; the stage returns normally."""


def write_resolved_config(cfg: StudyConfig) -> Path:
    """Write the fully resolved config (defaults filled in) to `outputs/<study>/config.yaml`."""
    path = cfg.out / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = cfg.model_dump(mode="json")
    path.write_text(yaml.safe_dump(tree, sort_keys=False, allow_unicode=True))
    return path


def read_existing(path: Path) -> dict:
    """The records already in `path` ({} when there is none), without creating anything."""
    from ..records import RecordStore

    return RecordStore(path).load() if Path(path).exists() else {}


def round_seed(spec: ModelSpec, round_: int) -> int:
    """The request seed of round `round_`: differs between rounds (so rounds are independent
    samples and distinct cache entries) and is stable across runs (so a re-run hits the cache).

    >>> round_seed(ModelSpec(spec="openai:gpt-4o"), 2), round_seed(ModelSpec(spec="openai:x", seed=10), 1)
    (2, 11)
    """
    return (spec.seed or 0) + int(round_)


@dataclass
class StageRun:
    """Backends, spending and messages of one run of one stage."""
    cfg: StudyConfig
    spent_usd: float = 0.0
    log: object = field(default_factory=lambda: sys.stderr)
    stage: str = "stage"
    _backends: dict = field(default_factory=dict)
    _progress: object = None

    @property
    def progress(self):
        """This run's `progress.StageProgress` (counts, failures, cost, ETA; see progress.py)."""
        if self._progress is None:
            from ..progress import StageProgress

            self._progress = StageProgress(self.stage, self.cfg.out, stream=self.log)
        return self._progress

    @property
    def chunk_size(self) -> int:
        """Items per batched call: enough to keep `concurrency` requests in flight, small
        enough that a killed run loses little (each chunk is saved before the next starts)."""
        return max(16, 4 * self.cfg.concurrency)

    def remaining_usd(self) -> float | None:
        if self.cfg.budget_usd is None:
            return None
        return max(0.0, self.cfg.budget_usd - self.spent_usd)

    @staticmethod
    def _key(spec: ModelSpec, adapter: str | None):
        return (spec.spec, spec.base_url, adapter, repr(sorted(spec.options.items())))

    def backend(self, spec: ModelSpec, adapter: str | None = None):
        """A backend for `spec` (one per spec and adapter), given the budget still left."""
        key = self._key(spec, adapter)
        if key not in self._backends:
            from ..llm import get_backend

            # progress=False: the stage's own StageProgress shows counts, cost and ETA.
            self._backends[key] = get_backend(
                spec.spec, base_url=spec.base_url, concurrency=self.cfg.concurrency,
                budget_usd=self.remaining_usd(), adapter=adapter,
                **{"progress": False, **spec.options})
        return self._backends[key]

    def release(self, spec: ModelSpec, adapter: str | None = None) -> None:
        """Close and forget one backend (a local model's memory is freed)."""
        b = self._backends.pop(self._key(spec, adapter), None)
        if b is not None and callable(getattr(b, "close", None)):
            b.close()

    def close(self) -> None:
        """Drop the backends (local ones hold a model in memory) and end the progress view."""
        if self._progress is not None:
            self._progress.close()
        for b in self._backends.values():
            close = getattr(b, "close", None)
            if callable(close):
                close()
        self._backends.clear()

    def account(self, results) -> None:
        """Add what `results` cost and stop the stage if the budget is spent."""
        self.spent_usd += sum((r.cost_usd or 0.0) for r in results if not r.cached)
        if any(r.error == "budget_exceeded" for r in results):
            raise BudgetExhausted(
                f"budget of ${self.cfg.budget_usd:.2f} spent (${self.spent_usd:.2f} this run)")

    def say(self, message: str) -> None:
        print(f"skillmix: {message}", file=self.log, flush=True)
