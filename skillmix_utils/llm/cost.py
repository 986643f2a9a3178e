"""Token prices (data/prices.yaml) and what a request or a whole stage costs.

`estimate_cost("openai:gpt-4o", 1000, 500, 300)` is the dry-run figure a stage prints before it
starts; backends use `price_of` for the running total and the budget cap.
"""
from __future__ import annotations

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
