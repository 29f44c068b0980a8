"""Bounded Decimal field types for every bot config (see ``domain.money`` for the bounds).

An amount or price that Decimal arithmetic cannot round to an exchange step (``1e400``,
``1`` followed by 200 zeros, ``1e-400``) used to be accepted and then raised
``InvalidOperation`` on every candle, or a 500 from a grid's checks. These types refuse
it where the config is validated, so the error names the field and the reason:

* ``Amount``: an amount, price or notional; finite, at most ``MAX_AMOUNT`` (10^12), at
  most ``MAX_PLACES`` (12) decimal places. Add ``gt=0``/``ge=0`` on the field.
* ``Percent``: a percentage; finite, at most ``MAX_PERCENT`` (1000), at most 12 places.
* ``Coefficient``: a multiplier (martingale); finite, at most ``MAX_COEFFICIENT``.

Values accept text, ints and Decimals. JSON numbers arrive as floats; they are read
through their shortest decimal text (``str(0.1) == "0.1"``), never through their binary
value, so no binary noise reaches an order. NaN, infinities and booleans are refused.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BeforeValidator

from sealbot.domain.money import MAX_AMOUNT, MAX_PERCENT, out_of_bounds

MAX_COEFFICIENT: Final = Decimal(100)


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    if isinstance(value, float):
        value = str(value)
    if isinstance(value, str | int):
        try:
            value = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation as exc:
            raise ValueError("is not a number") from exc
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError("must be a finite number")
    return value


def _bounded(maximum: Decimal) -> AfterValidator:
    def check(value: Decimal) -> Decimal:
        reason = out_of_bounds(value, maximum)
        if reason:
            raise ValueError(reason)
        return value

    return AfterValidator(check)


Amount = Annotated[Decimal, BeforeValidator(_number), _bounded(MAX_AMOUNT)]
Percent = Annotated[Decimal, BeforeValidator(_number), _bounded(MAX_PERCENT)]
Coefficient = Annotated[Decimal, BeforeValidator(_number), _bounded(MAX_COEFFICIENT)]

MAX_SECONDS: Final = 10 * 365 * 86_400
"""The longest duration (cooldown, timeout) a config may give: ten years. Larger ones
overflow ``timedelta`` where the engine adds them to a candle's time."""
MAX_SIGNAL_AGE_SECONDS: Final = 86_400
"""The longest age, delay or lag a signal may carry (a signal bot's ``max_signal_age_seconds``,
a body's ``max_lag`` and ``delay_seconds``): one day. An alert older than that is no
longer a signal."""
