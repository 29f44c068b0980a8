"""Field types shared by the grid and signal bot configs.

Money fields accept text, ints and Decimals. JSON numbers arrive as floats; they are
read through their shortest decimal text (``str(0.1) == "0.1"``), never through their
binary value, so no binary noise reaches an order. NaN, infinities and booleans are
refused. The market's pair may be written ``BTC/USDT`` instead of a ``{base, quote}``
object, because that is how people write it.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationError

from sealbot.domain import InvalidConfig, MarketRules, Pair


def _money(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    if isinstance(value, float):
        value = str(value)
    if isinstance(value, str | int):
        try:
            value = Decimal(value)
        except InvalidOperation as exc:
            raise ValueError("is not a number") from exc
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError("must be a finite number")
    return value


Money = Annotated[Decimal, BeforeValidator(_money)]


def _market(value: Any) -> Any:
    if isinstance(value, Mapping) and isinstance(value.get("pair"), str):
        return {**value, "pair": Pair.parse(value["pair"])}
    return value


Market = Annotated[MarketRules, BeforeValidator(_market)]
BOT_ID_PATTERN = r"^[A-Za-z0-9]{1,12}$"


def invalid_config(error: ValidationError) -> InvalidConfig:
    """The first error of a Pydantic validation, as the domain's InvalidConfig naming
    its field path (``market.pair``, ``take_profit_steps.2.amount``) and reason.
    Only the reason is kept, never the input value, so a secret typed in the wrong
    field cannot leak through the message."""
    first = error.errors(include_url=False, include_input=False)[0]
    path = ".".join(str(part) for part in first["loc"]) or "config"
    reason = str(first["msg"]).removeprefix("Value error, ")
    return InvalidConfig(path, reason)
