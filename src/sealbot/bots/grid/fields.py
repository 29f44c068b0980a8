"""Field types shared by the grid and signal bot configs.

Money fields accept text, ints and Decimals. JSON numbers arrive as floats; they are
read through their shortest decimal text (``str(0.1) == "0.1"``), never through their
binary value, so no binary noise reaches an order. NaN, infinities and booleans are
refused.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator


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


BOT_ID_PATTERN = r"^[A-Za-z0-9]{1,12}$"
