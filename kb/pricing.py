"""Estimated cost of a Claude request from its token usage.

Prices are USD per million tokens: (input, output, cache write, cache read). The default
table covers the current model families; `settings.price_table` overrides or extends it with
the format

    "model=input,output,cache_write,cache_read;model=..."

for example `"claude-sonnet-5-5=3,15,3.75,0.30;claude-haiku-5-5=1,5,1.25,0.10"`. A model is
matched exactly first, then by the longest table key that prefixes it (so `claude-opus`
prices every Opus model not listed by name). An unknown model has no estimate (`None`).
"""

from __future__ import annotations

from kb.errors import ConfigError
from kb.types import Usage

Prices = tuple[float, float, float, float]

DEFAULT_PRICES: dict[str, Prices] = {
    "claude-opus": (5.0, 25.0, 6.25, 0.50),
    "claude-sonnet": (3.0, 15.0, 3.75, 0.30),
    "claude-haiku": (1.0, 5.0, 1.25, 0.10),
    "claude-fable": (3.0, 15.0, 3.75, 0.30),
    "claude-mythos": (15.0, 75.0, 18.75, 1.50),
}


def parse_price_table(text: str) -> dict[str, Prices]:
    """Parse the `settings.price_table` format; a malformed entry is a ConfigError."""
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
        table[model.strip()] = (numbers[0], numbers[1], numbers[2], numbers[3])
    return table


def prices_for(model: str, price_table: str = "") -> Prices | None:
    table = {**DEFAULT_PRICES, **parse_price_table(price_table)}
    if model in table:
        return table[model]
    keys = sorted((k for k in table if model.startswith(k)), key=len, reverse=True)
    return table[keys[0]] if keys else None


def estimate_cost(model: str, usage: Usage, price_table: str = "") -> float | None:
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
