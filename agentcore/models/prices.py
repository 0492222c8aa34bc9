"""What an LLM call costs, in US dollars, from its model name and token counts.

Prices come from the caller's own table first (``ModelPrice`` per model name), then from
``genai-prices``, which ships its price data inside the package (no network is used: the bundled
snapshot is read, never updated). A model neither knows has *no* price: ``None``, never ``0``.

Model names may carry a provider prefix, ``"openai:gpt-4o-mini"``; the prefix is passed to
``genai-prices`` as the provider id.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agentcore.core.events import TokenUsage
from agentcore.errors import ConfigError

__all__ = ("ModelPrice", "PriceFn", "check_cost_budget", "known_price", "parse_prices", "price_of", "pricer")

PriceFn = Callable[[str, TokenUsage, "datetime | None"], "float | None"]
"""``(model, usage, at) -> dollars`` or ``None`` when the model has no known price."""


@dataclass(frozen=True)
class ModelPrice:
    """A user-given price: US dollars per million tokens.

    Args:
        input_mtok: Dollars per million prompt (input) tokens.
        output_mtok: Dollars per million completion (output) tokens.

    Raises:
        ConfigError: a price is negative, not finite or not a number.
    """

    input_mtok: float
    output_mtok: float

    def __post_init__(self) -> None:
        for name in ("input_mtok", "output_mtok"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(
                    f"ModelPrice.{name} must be a finite number >= 0 (dollars per million tokens), got {value!r}"
                )

    def cost(self, usage: TokenUsage) -> float:
        """Dollars for ``usage``."""
        return (usage.prompt_tokens * self.input_mtok + usage.completion_tokens * self.output_mtok) / 1_000_000

    def to_json(self) -> dict[str, float]:
        return {"input_mtok": self.input_mtok, "output_mtok": self.output_mtok}


def parse_prices(prices: Mapping[str, Any] | None) -> dict[str, ModelPrice]:
    """Normalise a price table: ``{model: ModelPrice | {"input_mtok": x, "output_mtok": y}}``.

    Raises:
        ConfigError: the table is not a mapping of model names to prices of that shape.
    """
    if prices is None:
        return {}
    if not isinstance(prices, Mapping):
        raise ConfigError(f"prices must map model names to prices, got {type(prices).__name__}")
    out: dict[str, ModelPrice] = {}
    for model, price in prices.items():
        if not isinstance(model, str) or not model:
            raise ConfigError(f"prices: model names must be non-empty strings, got {model!r}")
        if isinstance(price, ModelPrice):
            out[model] = price
        elif isinstance(price, Mapping) and set(price) == {"input_mtok", "output_mtok"}:
            out[model] = ModelPrice(input_mtok=price["input_mtok"], output_mtok=price["output_mtok"])
        else:
            raise ConfigError(
                f"prices[{model!r}] must be a ModelPrice or {{'input_mtok': dollars, 'output_mtok': dollars}} "
                f"(per million tokens), got {price!r}"
            )
    return out


def _genai_price(model: str, usage: TokenUsage, at: datetime | None) -> float | None:
    """The ``genai-prices`` price of one call, or ``None`` when it cannot price this usage.

    Raises:
        LookupError: ``genai-prices`` knows no such model (or provider).
    """
    from genai_prices import Usage, calc_price

    provider, _, name = model.rpartition(":")
    try:
        tokens = Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens)
        result = calc_price(tokens, name, provider_id=provider or None, genai_request_timestamp=at)
    except ValueError:
        return None
    return _finite(float(result.total_price))


def _finite(cost: float) -> float | None:
    return cost if math.isfinite(cost) else None


def _table_cost(price: ModelPrice, usage: TokenUsage) -> float | None:
    """``price.cost(usage)``, or ``None`` when no float holds it."""
    try:
        return _finite(price.cost(usage))
    except OverflowError:
        return None


def _priceable(usage: TokenUsage) -> bool:
    """Whether ``usage`` can have a price: a server may report any integers, and negative counts
    have none (nor would a negative cost be one)."""
    return usage.prompt_tokens >= 0 and usage.completion_tokens >= 0


def price_of(
    model: str, usage: TokenUsage, at: datetime | None = None, *, prices: Mapping[str, ModelPrice] | None = None
) -> float | None:
    """Dollars one call of ``model`` cost for ``usage``, or ``None`` when no price is known.

    Args:
        model: The model name as recorded (``LLMCalled.model``).
        usage: The call's token counts.
        at: When the call was made (prices change over time); ``None`` for now.
        prices: The caller's own prices by model name; they win over ``genai-prices``.

    Usage no price can follow (negative counts, a cost beyond a float) has no price either: ``None``.
    """
    if not _priceable(usage):
        return None
    if prices and model in prices:
        return _table_cost(prices[model], usage)
    try:
        return _genai_price(model, usage, at)
    except LookupError:
        return None


def known_price(model: str, prices: Mapping[str, ModelPrice] | None = None) -> bool:
    """Whether ``price_of`` gives a price for ``model``."""
    return price_of(model, TokenUsage(), prices=prices) is not None


def pricer(prices: Mapping[str, Any] | None = None) -> PriceFn:
    """A ``PriceFn`` over ``prices`` (see ``parse_prices``) then ``genai-prices``.

    A model ``genai-prices`` does not know today is looked up once: later calls of it at ``at=None``
    (now, as a live run prices its calls) get ``None`` at once.
    """
    table = parse_prices(prices)
    unknown_now: set[str] = set()

    def price(model: str, usage: TokenUsage, at: datetime | None) -> float | None:
        if not _priceable(usage):
            return None
        if model in table:
            return _table_cost(table[model], usage)
        if at is None and model in unknown_now:
            return None
        try:
            return _genai_price(model, usage, at)
        except LookupError:
            if at is None:
                unknown_now.add(model)
            return None

    return price


def check_cost_budget(max_cost_usd: Any, models: Iterable[str], prices: Mapping[str, ModelPrice]) -> float | None:
    """``max_cost_usd`` checked: ``None``, or a finite number of dollars > 0 for models that all
    have a known price.

    Raises:
        ConfigError: not such a number, or a model has no known price (the budget could not be kept).
    """
    if max_cost_usd is None:
        return None
    if isinstance(max_cost_usd, bool) or not isinstance(max_cost_usd, (int, float)) or not max_cost_usd > 0:
        raise ConfigError(f"max_cost_usd must be None or a number of dollars > 0, got {max_cost_usd!r}")
    if not math.isfinite(max_cost_usd):
        raise ConfigError("max_cost_usd must be finite; pass None for no limit")
    for model in models:
        if not known_price(model, prices):
            raise ConfigError(
                f"max_cost_usd is set but model {model!r} has no known price (genai-prices does not know it): "
                f"pass prices={{{model!r}: ModelPrice(input_mtok=..., output_mtok=...)}}"
            )
    return float(max_cost_usd)
