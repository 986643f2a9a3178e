"""Token prices (data/prices.yaml), what a request or a whole stage costs, and what was spent.

`estimate_cost("openai:gpt-4o", 1000, 500, 300)` is the dry-run figure a stage prints before it
starts; backends use `price_of` to price each reply and charge it to their `Budget`, the one
running total of what was spent (written through to the study's `BudgetLedger`).
"""
from __future__ import annotations

import threading
from functools import lru_cache
from importlib import resources

import yaml

LOCAL_KINDS = ("hf", "vllm")


@lru_cache(maxsize=1)
def price_table() -> dict:
    """The parsed data/prices.yaml."""
    text = resources.files("skillmix_utils").joinpath("data/prices.yaml").read_text()
    return yaml.safe_load(text)


def price_of(model: str, prices: dict | None = None) -> dict | None:
    """{input, output} dollars per million tokens for a model, or None when unlisted.

    >>> price_of("gpt-4o-mini-2024-07-18")["input"]
    0.15
    >>> price_of("gpt-4o-2024-08-06")["output"]
    10.0
    >>> price_of("my-local-model") is None
    True
    """
    table = prices if prices is not None else price_table()["models"]
    if model in table:
        return table[model]
    best = max((m for m in table if model.startswith(m)), key=len, default=None)
    return table[best] if best else None


def request_cost(price: dict | None, input_tokens: int, output_tokens: int,
                 batch: bool = False) -> float:
    """Dollars for one request's usage (0.0 when the price is unknown).

    >>> request_cost({"input": 2.5, "output": 10.0}, 1000, 100)
    0.0035
    >>> request_cost({"input": 2.5, "output": 10.0}, 1000, 100, batch=True)
    0.00175
    """
    if not price:
        return 0.0
    usd = (input_tokens * price["input"] + output_tokens * price["output"]) / 1e6
    if batch:
        usd *= price_table().get("batch_discount", 0.5)
    return round(usd, 10)


def estimate_cost(spec: str, n_requests: int, input_tokens: int, output_tokens: int,
                  batch: bool = False) -> float | None:
    """Dry-run cost of `n_requests` requests of about `input_tokens` in and `output_tokens` out.

    Local models cost 0.0; a model without a listed price gives None.

    >>> estimate_cost("openai:gpt-4o", 1000, 500, 300)
    4.25
    >>> estimate_cost("anthropic:claude-3-opus-20240229", 10, 1000, 1000, batch=True)
    0.45
    >>> estimate_cost("hf:smollm2-135m-instruct", 10, 100, 100)
    0.0
    >>> estimate_cost("openai-compatible:llama", 10, 100, 100) is None
    True
    """
    kind, _, model = spec.partition(":")
    if kind in LOCAL_KINDS:
        return 0.0
    price = price_of(model)
    if price is None:
        return None
    return round(n_requests * request_cost(price, input_tokens, output_tokens, batch), 6)


def format_usd(usd: float | None) -> str:
    """Dollars with enough digits to mean something: cents above $1, else four decimals (six
    below a hundredth of a cent).

    >>> format_usd(1234.5), format_usd(0.0024), format_usd(0.0000123), format_usd(0)
    ('$1,234.50', '$0.0024', '$0.000012', '$0.00')
    """
    usd = float(usd or 0.0)
    if usd == 0:
        return "$0.00"
    if abs(usd) >= 1:
        return f"${usd:,.2f}"
    return f"${usd:.4f}" if abs(usd) >= 0.0001 else f"${usd:.6f}"


class BudgetLedger:
    """What a study has paid, across runs: `<output folder>/budget_ledger.jsonl`, one line per
    paid reply ({time, pid, command, usd}), written by `Budget.charge` as the reply arrives. A
    study's `budget_usd` is checked against its total, so three runs under a $1 cap spend $1 in
    all, not $3; a grid's runs link their folder's ledger to the study's (`grid.link_study_ledger`)."""

    NAME = "budget_ledger.jsonl"

    def __init__(self, out_dir):
        from pathlib import Path

        self.path = Path(out_dir) / self.NAME

    def total(self) -> float:
        """Dollars paid by every run so far (damaged lines are skipped)."""
        import json

        if not self.path.exists():
            return 0.0
        usd = 0.0
        for line in self.path.read_bytes().splitlines():
            try:
                usd += float(json.loads(line)["usd"])
            except (ValueError, KeyError, TypeError):
                continue
        return round(usd, 10)

    def add(self, usd: float) -> None:
        """Append one payment (durably, one whole line)."""
        import json
        import os
        import sys
        import time

        if usd <= 0:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid(),
                           "command": " ".join(sys.argv[1:2])[:100], "usd": round(usd, 10)})
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())


class Budget:
    """What was spent and what may still be: the one running total every paid reply is charged
    to as it arrives, by whichever backend received it.

    With a `ledger` each charge is written to the study's ledger at once, so money paid inside
    a call that then raises (a refusal after three paid replies) is still on record, and
    `cap_usd` (the study's `budget_usd`) is checked against every run's payments. `run_cap_usd`
    caps this run alone. A stage's backends share one Budget (`StageRun.budget`); a backend
    built on its own gets a private one from its `budget_usd`.

    >>> b = Budget(cap_usd=1.0)
    >>> b.charge(0.75); b.allows(0.25), b.allows(0.5), b.spent_usd, b.left()
    (True, False, 0.75, 0.25)
    """

    def __init__(self, cap_usd: float | None = None, run_cap_usd: float | None = None,
                 ledger: BudgetLedger | None = None):
        self.cap_usd, self.run_cap_usd, self.ledger = cap_usd, run_cap_usd, ledger
        self.before_usd = ledger.total() if ledger is not None else 0.0   # earlier runs paid
        self.spent_usd = 0.0                                               # this run paid
        self._lock = threading.Lock()   # backends answer on their own event-loop threads

    @property
    def capped(self) -> bool:
        """Whether any cap applies (then every paid model needs a price)."""
        return self.cap_usd is not None or self.run_cap_usd is not None

    def left(self) -> float | None:
        """Dollars the tighter cap still allows (never below 0), or None without a cap."""
        left = []
        if self.cap_usd is not None:
            left.append(self.cap_usd - self.before_usd - self.spent_usd)
        if self.run_cap_usd is not None:
            left.append(self.run_cap_usd - self.spent_usd)
        return max(0.0, min(left)) if left else None

    def allows(self, usd: float) -> bool:
        """Whether `usd` more (a request's worst case plus what is in flight) fits the caps."""
        left = self.left()
        return left is None or usd <= left + 1e-12

    def charge(self, usd: float) -> None:
        """Add one paid reply, at once (and to the ledger, durably)."""
        if usd <= 0:
            return
        with self._lock:
            self.spent_usd = round(self.spent_usd + usd, 10)
            if self.ledger is not None:
                self.ledger.add(usd)
