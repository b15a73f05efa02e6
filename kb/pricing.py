"""Estimated cost of a Claude request from its token usage.

Prices are USD per million tokens: (input, output, cache write, cache read). The default
table covers the current model families; `settings.price_table` (parsed from
`KB_PRICE_TABLE` when settings load) overrides or extends it. The text format is

    "model=input,output,cache_write,cache_read;model=..."

for example `"claude-sonnet-5-5=3,15,3.75,0.30;claude-haiku-5-5=1,5,1.25,0.10"`. A model is
matched exactly first, then by the longest table key that prefixes it (so `claude-opus`
prices every Opus model not listed by name). An unknown model has no estimate (`None`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from kb.errors import ConfigError
from kb.types import Usage

Prices = tuple[float, float, float, float]
BATCH_DISCOUNT = 0.5  # Message Batches bill every token at half the price (contract §7)

DEFAULT_PRICES: dict[str, Prices] = {
    "claude-opus": (5.0, 25.0, 6.25, 0.50),
    "claude-sonnet": (3.0, 15.0, 3.75, 0.30),
    "claude-haiku": (1.0, 5.0, 1.25, 0.10),
    "claude-fable": (3.0, 15.0, 3.75, 0.30),
    "claude-mythos": (15.0, 75.0, 18.75, 1.50),
}


class PriceTable(Mapping[str, Prices]):
    """Prices by model name: an immutable (and hashable) mapping, so frozen settings can hold it."""

    __slots__ = ("_prices",)

    def __init__(self, prices: Mapping[str, Prices] | None = None) -> None:
        self._prices: dict[str, Prices] = dict(prices or {})

    def __getitem__(self, model: str) -> Prices:
        return self._prices[model]

    def __iter__(self) -> Iterator[str]:
        return iter(self._prices)

    def __len__(self) -> int:
        return len(self._prices)

    def __hash__(self) -> int:
        return hash(frozenset(self._prices.items()))

    def __repr__(self) -> str:
        return f"PriceTable({self._prices!r})"


def parse_price_table(text: str) -> PriceTable:
    """Parse the `KB_PRICE_TABLE` format; a malformed entry is a ConfigError naming it."""
    table: dict[str, Prices] = {}
    for entry in filter(None, (e.strip() for e in text.split(";"))):
        model, _, values = entry.partition("=")
        try:
            numbers = tuple(float(v) for v in values.split(","))
        except ValueError:
            numbers = ()
        if not model.strip() or len(numbers) != 4:
            raise ConfigError(
                f"KB_PRICE_TABLE entry {entry!r} must be model=input,output,cache_write,cache_read"
            )
        if not all(math.isfinite(n) and n >= 0 for n in numbers):
            raise ConfigError(
                f"KB_PRICE_TABLE entry {entry!r}: prices must be finite and not negative"
            )
        table[model.strip()] = (numbers[0], numbers[1], numbers[2], numbers[3])
    return PriceTable(table)


def prices_for(model: str, price_table: Mapping[str, Prices] | str = "") -> Prices | None:
    """The prices of `model`: `price_table` over the default table (text in the
    `KB_PRICE_TABLE` format is parsed first; settings hold it parsed)."""
    if isinstance(price_table, str):
        price_table = parse_price_table(price_table)
    table = {**DEFAULT_PRICES, **price_table}
    if model in table:
        return table[model]
    keys = sorted((k for k in table if model.startswith(k)), key=len, reverse=True)
    return table[keys[0]] if keys else None


def estimate_cost(
    model: str, usage: Usage, price_table: Mapping[str, Prices] | str = ""
) -> float | None:
    prices = prices_for(model, price_table)
    if prices is None:
        return None
    counts = (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_write_tokens,
        usage.cache_read_tokens,
    )
    return round(sum(n * p for n, p in zip(counts, prices, strict=True)) / 1_000_000, 6)
