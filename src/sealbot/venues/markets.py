"""ccxt market metadata turned into ``MarketRules``, exactly, in Decimal.

ccxt hands out precision and limits as Python floats (parsed from the exchange's
strings) and interprets ``precision`` by the exchange's ``precisionMode``:

* ``TICK_SIZE`` (4; Binance, KuCoin, OKX, Bybit, Kraken in ccxt 4.5): the value *is*
  the increment, e.g. ``1e-05``.
* ``DECIMAL_PLACES`` (2): the value is a number of decimals, ``2`` means ``0.01``.
* ``SIGNIFICANT_DIGITS`` (3): the increment depends on the price itself, so no fixed
  tick exists; the rule is recorded as 0 ("no fixed rule") and the exchange's own
  check is the last word.

A float is turned into Decimal through its shortest round-trip text (``repr``),
which is the text ccxt parsed: ``0.1`` becomes ``Decimal('0.1')``, never the binary
expansion ``0.1000000000000000055511151231257827``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from sealbot.domain import MarketRules, Pair
from sealbot.domain.money import ZERO

DECIMAL_PLACES: Final = 2
SIGNIFICANT_DIGITS: Final = 3
TICK_SIZE: Final = 4


def to_decimal(value: Any) -> Decimal | None:
    """ccxt number (float, int, numeric text, None) -> exact Decimal, or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str) and value.strip():
        result = Decimal(value.strip())
        return result if result.is_finite() else None
    return None


def plain(value: Decimal) -> Decimal:
    """``value`` without trailing zeros and never in exponent form (``1E+5`` -> ``100000``)."""
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal


def increment(precision: Any, precision_mode: int) -> Decimal:
    """The price/amount increment a ccxt ``precision`` value means under ``precision_mode``."""
    value = to_decimal(precision)
    if value is None or (value <= 0 and precision_mode == TICK_SIZE):
        return ZERO
    if precision_mode == TICK_SIZE:
        return plain(value)
    if precision_mode == DECIMAL_PLACES:
        if value != value.to_integral_value():
            raise ValueError(f"precision {precision!r} is not a whole number of decimal places")
        return Decimal(1).scaleb(-int(value))
    return ZERO  # SIGNIFICANT_DIGITS: no fixed increment


def _limit(limits: Mapping[str, Any], kind: str, bound: str) -> Decimal:
    section = limits.get(kind) or {}
    value = to_decimal(section.get(bound))
    return plain(value) if value is not None and value > 0 else ZERO


def rules_from_market(market: Mapping[str, Any], precision_mode: int) -> MarketRules:
    """``MarketRules`` for one ccxt market dict (``exchange.markets[symbol]``)."""
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    return MarketRules(
        pair=Pair(str(market["base"]).upper(), str(market["quote"]).upper()),
        tick_size=increment(precision.get("price"), precision_mode),
        step_size=increment(precision.get("amount"), precision_mode),
        min_amount=_limit(limits, "amount", "min"),
        max_amount=_limit(limits, "amount", "max"),
        min_notional=_limit(limits, "cost", "min"),
        max_notional=_limit(limits, "cost", "max"),
    )


def spot_rules(markets: Mapping[str, Mapping[str, Any]], precision_mode: int) -> dict[Pair, MarketRules]:
    """Rules of every active spot market; others (swaps, futures, options) are skipped
    because sealbot trades spot, and a pair whose symbol is not ``BASE/QUOTE`` is too."""
    result: dict[Pair, MarketRules] = {}
    for market in markets.values():
        if not market.get("spot", market.get("type") == "spot") or market.get("active") is False:
            continue
        try:
            rules = rules_from_market(market, precision_mode)
        except (ValueError, KeyError):
            continue  # a symbol sealbot cannot name (e.g. lower-case or odd characters)
        result[rules.pair] = rules
    return result
