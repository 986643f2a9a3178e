"""What every stage run shares: the resolved config on disk, backends, the budget, the plan.

A stage opens a `StageRun`; it writes `outputs/<study>/config.yaml` (not on a dry run), builds
backends lazily, all charging one `Budget` (llm/cost.py), and stops cleanly (`BudgetExhausted`)
when a backend answers `budget_exceeded`: what finished is already on disk, and a re-run resumes
from it. Each paid reply is charged as it arrives and written to the study's ledger
(`budget_ledger.jsonl`; a grid run's is the study's, linked), so `budget_usd` caps the study
across runs and grid runs, and `run_budget_usd` one run. `StageRun.conclude` ends a stage: it raises
`BudgetSpent` (exit 3) after a budget stop and `ItemsFailed` (exit 1) when items still failed.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from skillmix_utils.core.config import ModelSpec, StudyConfig
from skillmix_utils.core.errors import BudgetSpent, ItemsFailed
from skillmix_utils.core.folder_lock import output_lock
from skillmix_utils.core.numbers import plural
from skillmix_utils.core.records import RecordStore
from skillmix_utils.llm import get_backend
from skillmix_utils.llm.cost import Budget, BudgetLedger, format_usd
from skillmix_utils.stages.progress import StageProgress, in_kernel


class BudgetExhausted(Exception):
    """Raised inside a stage when the configured budget is spent; the stage returns normally."""


def read_existing(path: Path) -> dict:
    """The records already in `path` ({} when there is none), without creating anything."""

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
    log: object = field(default_factory=lambda: sys.stderr)
    stage: str = "stage"
    _backends: dict = field(default_factory=dict)
    _progress: object = None

    @property
    def progress(self):
        """This run's `progress.StageProgress` (counts, failures, cost, ETA; see progress.py)."""
        if self._progress is None:

            self._progress = StageProgress(self.stage, self.cfg.out, stream=self.log)
        return self._progress

    def __post_init__(self):
        # One run per output folder, also for a notebook opened in JupyterLab (the command line
        # and `skillmix run` already hold the lock; then this is a no-op). Released by close().

        self._lock = output_lock(self.cfg.out)
        self._lock.__enter__()
        # The one place that holds what was spent: every backend below charges it.
        self.budget = Budget(self.cfg.budget_usd, getattr(self.cfg, "run_budget_usd", None),
                             BudgetLedger(self.cfg.out))

    @property
    def spent_usd(self) -> float:
        """What this run has paid so far (every backend's paid replies)."""
        return self.budget.spent_usd

    @property
    def before_usd(self) -> float:
        """What earlier runs of this study had paid when this one started."""
        return self.budget.before_usd

    @property
    def chunk_size(self) -> int:
        """Items per batched call: enough to keep `concurrency` requests in flight, small
        enough that a killed run loses little (each chunk is saved before the next starts)."""
        return max(16, 4 * self.cfg.concurrency)

    def remaining_usd(self) -> float | None:
        """The smaller of what the study's cap (all runs) and the run's cap still allow."""
        return self.budget.left()

    def budget_message(self) -> str:
        """Where the money stands, e.g. "study budget $0.0010: $0.0024 spent ($0.0008 this run)"."""
        caps = []
        if self.cfg.budget_usd is not None:
            caps.append(f"study budget {format_usd(self.cfg.budget_usd)}")
        if getattr(self.cfg, "run_budget_usd", None) is not None:
            caps.append(f"run budget {format_usd(self.cfg.run_budget_usd)}")
        return (f"{' and '.join(caps) or 'budget'} spent: "
                f"{format_usd(self.before_usd + self.spent_usd)} paid by this study "
                f"({format_usd(self.spent_usd)} this run)")

    @staticmethod
    def _key(spec: ModelSpec, adapter: str | None):
        return (spec.spec, spec.base_url, adapter, repr(sorted(spec.options.items())))

    def backend(self, spec: ModelSpec, adapter: str | None = None):
        """A backend for `spec` (one per spec and adapter), charging this run's budget."""
        key = self._key(spec, adapter)
        if key not in self._backends:

            # progress=False: the stage's own StageProgress shows counts, cost and ETA.
            self._backends[key] = get_backend(
                spec.spec, base_url=spec.base_url, concurrency=self.cfg.concurrency,
                budget=self.budget, adapter=adapter,
                **{"progress": False, **spec.options})
            self.progress.watch(self._backends[key])   # a stalled request shows in the line
        return self._backends[key]

    def release(self, spec: ModelSpec, adapter: str | None = None) -> None:
        """Close and forget one backend: its local model or vLLM engine is freed, unless another
        backend still holds it (`llm.loaded`)."""
        b = self._backends.pop(self._key(spec, adapter), None)
        if b is not None and callable(getattr(b, "close", None)):
            b.close()

    def close(self) -> None:
        """Drop the backends (local ones hold a model in memory); end the progress view."""
        try:
            if self._progress is not None:
                self._progress.close()
            for b in self._backends.values():
                close = getattr(b, "close", None)
                if callable(close):
                    close()
            self._backends.clear()
        finally:
            lock, self._lock = getattr(self, "_lock", None), None
            if lock is not None:
                lock.__exit__(None, None, None)

    def stop_if_spent(self, results) -> None:
        """Stop the stage (`BudgetExhausted`) when one of `results` was refused for the budget.
        (What they cost was charged as each reply arrived.)"""
        if any(r.error == "budget_exceeded" for r in results):
            raise BudgetExhausted(self.budget_message())

    def conclude(self, records, grader_labels, what: str, records_path, stopped: str | None = None
                 ) -> None:
        """End a stage loudly: `BudgetSpent` after a budget stop, `ItemsFailed` when texts or
        gradings by `grader_labels` still failed after the retries (they are recorded, and a
        re-run retries only them). Returns quietly when everything was made."""
        if stopped:
            raise BudgetSpent(f"{stopped}; what finished is saved in {records_path}; raise "
                              "budget_usd (or run_budget_usd) and re-run to continue",
                              field="budget_usd")
        texts = [r for r in records if r.status == "error"]
        gradings = [g for r in records if r.status == "ok" for g in r.gradings
                    if g.status == "error" and g.grader in set(grader_labels)]
        if texts or gradings:
            first = (texts[0].error if texts else gradings[0].error) or "?"
            raise ItemsFailed(f"{what}: {len(texts)} of {plural(len(records), 'text')} and "
                              f"{plural(len(gradings), 'grading')} failed after the retries (first: {first[:200]}); they are "
                              f"recorded in {records_path}; re-run the same command to retry only "
                              "them")
        unreadable = self.unreadable(records, grader_labels)
        if unreadable:
            raise ItemsFailed(f"{what}: {unreadable}; they are recorded in {records_path} (each "
                              "raw reply kept) and left out of the votes")

    def unreadable(self, records, grader_labels) -> str | None:
        """What to say when a grader left more of its gradings unreadable (parse_failed after
        its `parse_retries`) than its `max_unreadable` allows, else None."""
        specs: dict = {}
        for g in [*(self.cfg.data.graders if self.cfg.data else []),
                  *(self.cfg.evaluation.graders if self.cfg.evaluation else [])]:
            specs.setdefault(g.label, g)
        for label in dict.fromkeys(grader_labels):
            mine = [g for r in records if r.status == "ok" for g in r.gradings if g.grader == label]
            bad = [g for g in mine if g.status == "parse_failed"]
            spec = specs.get(label)
            allowed = spec.max_unreadable if spec is not None else 0.0
            if mine and len(bad) / len(mine) > allowed:
                tries = 1 + (spec.parse_retries if spec is not None else 0)
                return (f"{len(bad)} of {len(mine)} gradings by {label} could not be read after "
                        f"{tries} attempt{'s' * (tries > 1)} each (first reply: "
                        f"{(bad[0].raw_reply or '')[:80]!r}), more than its max_unreadable "
                        f"({allowed:g}) allows: check the grader's model and method, or raise "
                        "max_unreadable")
        return None

    def say(self, message: str) -> None:
        """A line about what the stage does next: on the terminal from the command line; in a
        notebook the progress display says it, so the line goes to the study's log instead
        (logger "skillmix.stage", which runner/notebook_config.quiet_notebook routes there)."""
        if self.log is sys.stderr and in_kernel():
            logging.getLogger("skillmix.stage").info(message)
        else:
            print(f"skillmix: {message}", file=self.log, flush=True)
