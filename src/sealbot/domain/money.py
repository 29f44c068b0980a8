"""Decimal arithmetic for amounts and prices, rounded the way exchanges round.

No float ever touches a value that becomes an order. Conversions from float are
refused outright: ``Decimal(0.1)`` carries binary noise into an order book. Text and
int go through ``dec``.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache
from typing import Final

ZERO: Final = Decimal(0)
ONE: Final = Decimal(1)
HUNDRED: Final = Decimal(100)


def dec(value: Decimal | str | int) -> Decimal:
    """Turn text or an int into a finite Decimal; reject floats and NaN/Infinity."""
    if isinstance(value, bool | float):
        raise TypeError("money values must be Decimal, str or int, never float or bool")
    try:
        result = value if isinstance(value, Decimal) else Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """The largest multiple of ``step`` not above ``value`` (amounts: never exceed funds)."""
    return _to_step(value, step, ROUND_FLOOR)


def ceil_to_step(value: Decimal, step: Decimal) -> Decimal:
    """The smallest multiple of ``step`` not below ``value``."""
    return _to_step(value, step, ROUND_CEILING)


def round_to_step(value: Decimal, step: Decimal) -> Decimal:
    """The nearest multiple of ``step`` (banker's rounding on exact ties)."""
    return _to_step(value, step, ROUND_HALF_EVEN)


def _to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    if step <= 0:
        return value
    units = (value / step).quantize(ONE, rounding=rounding)
    return (units * step).quantize(_places(step))


@lru_cache(maxsize=1024)  # a market's tick and step sizes, asked for every order a bot sizes
def _places(step: Decimal) -> Decimal:
    """The quantum with the step's decimal places (0.01 -> 0.01, 5 -> 1): a result is
    expressed with them, never in exponent form, so it prints as an exchange expects it."""
    exponent = step.normalize().as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return Decimal(1).scaleb(-places)


def pct(value: Decimal, percent: Decimal) -> Decimal:
    """``percent`` % of ``value``."""
    return value * percent / HUNDRED


def moved(price: Decimal, percent: Decimal) -> Decimal:
    """``price`` moved by ``percent`` % (negative moves down)."""
    return price * (HUNDRED + percent) / HUNDRED


def deviation_pct(price: Decimal, reference: Decimal) -> Decimal:
    """How far ``price`` is from ``reference``, in % of the reference (signed)."""
    if reference == 0:
        raise ZeroDivisionError("reference price is zero")
    return (price - reference) * HUNDRED / reference


def to_text(value: Decimal) -> str:
    """Plain positional text (``0.00000001``, never ``1E-8``), the form exchanges accept."""
    return format(value, "f")
