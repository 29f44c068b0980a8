"""Decimal arithmetic for amounts and prices, rounded the way exchanges round.

No float ever touches a value that becomes an order. Conversions from float are
refused outright: ``Decimal(0.1)`` carries binary noise into an order book. Text and
int go through ``dec``.

Bounds: amounts, prices and notionals that come from users (bot configs, signals, guard
limits) are finite, at most ``MAX_AMOUNT`` and carry at most ``MAX_PLACES`` decimal
places; percentages at most ``MAX_PERCENT``. Rounding to a step (``_to_step``) works in
``_WIDE``, a context with room for every value those bounds allow (and for what a market
price makes of them: quote / price), so it never raises ``InvalidOperation``.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from functools import lru_cache
from typing import Final

ZERO: Final = Decimal(0)
ONE: Final = Decimal(1)
HUNDRED: Final = Decimal(100)

MAX_AMOUNT: Final = Decimal(10) ** 12
"""The largest amount, price or notional a user may give (10^12): above any real order,
even in currencies such as IDR or VND where a bitcoin costs 10^9 units."""
MAX_PLACES: Final = 12
"""Decimal places a user's amount or price may carry (10^-12 is finer than any
exchange's tick or step)."""
MAX_PERCENT: Final = Decimal(1000)
"""The largest percentage (take profit, deviation, stop loss...) a user may give: a 11x move."""

# Room for the bounds above: a quotient of MAX_AMOUNT-sized values over 10^-12 steps has
# up to ~50 digits; 28 (the default context) would make quantize raise InvalidOperation.
_WIDE: Final = Context(prec=80, Emax=999_999, Emin=-999_999)


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


def out_of_bounds(value: Decimal, maximum: Decimal = MAX_AMOUNT, places: int = MAX_PLACES) -> str | None:
    """Why ``value`` cannot be a user's amount, price or percentage (not finite, above
    ``maximum``, more than ``places`` decimal places), or None when it can. Says nothing
    of the sign: callers require positive or non-negative themselves."""
    if not value.is_finite():
        return "must be a finite number"
    if abs(value) > maximum:
        return f"must be at most {maximum:f}"
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        return f"has more than {places} decimal places"
    return None


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
    units = _WIDE.divide(value, step).quantize(ONE, rounding=rounding, context=_WIDE)
    return _WIDE.multiply(units, step).quantize(_places(step), context=_WIDE)


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
