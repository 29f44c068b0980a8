"""Column types that keep money exact and time zone-aware on every backend.

``ExactDecimal``: SQLAlchemy's ``Numeric`` on SQLite goes through a float, so
``0.1 + 0.2`` style noise would reach amounts and prices. Values are stored as
positional text on SQLite and as unconstrained ``NUMERIC`` on PostgreSQL (which keeps
every digit and the scale as given). Either way a Decimal comes back equal to the
one written, with the same digits after the point. Floats are refused on the way in.

``UtcDateTime``: SQLite has no time zone type and returns naive datetimes; this type
refuses naive datetimes on the way in, stores UTC, and hands back aware UTC
datetimes from both backends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


def decimal_to_text(value: Decimal) -> str:
    """Positional form (``0.00000001``, ``100``), never exponent form."""
    return format(value, "f")


class ExactDecimal(TypeDecorator[Decimal]):
    """A Decimal that round-trips exactly (text on SQLite, NUMERIC on PostgreSQL)."""

    impl = sa.String(80)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.Numeric(asdecimal=True))
        return dialect.type_descriptor(sa.String(80))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bool | float):
            raise TypeError("ExactDecimal columns take Decimal, int or str, never float")
        try:
            number = value if isinstance(value, Decimal) else Decimal(value)
        except InvalidOperation as exc:
            raise ValueError("ExactDecimal: not a number") from exc
        if not number.is_finite():
            raise ValueError("ExactDecimal: NaN and Infinity are not stored")
        text = decimal_to_text(number)
        return Decimal(text) if dialect.name == "postgresql" else text

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both backends; naive datetimes are refused."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError("UtcDateTime columns take datetime")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("UtcDateTime: naive datetime refused; pass an aware (UTC) datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware UTC, at microsecond precision (what both backends keep)."""
    return datetime.now(UTC)
