"""Money and time survive the database exactly, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from sealbot.store.types import ExactDecimal, UtcDateTime

meta = sa.MetaData()
probe = sa.Table("probe", meta, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("value", ExactDecimal()), sa.Column("at", UtcDateTime()))


@pytest.fixture
def probe_engine(engine: Engine) -> Engine:
    meta.create_all(engine)
    return engine


def _roundtrip(engine: Engine, value: object) -> Decimal | None:
    with engine.begin() as conn:
        new_id = conn.execute(probe.insert().values(value=value).returning(probe.c.id)).scalar_one()
        stored: Decimal | None = conn.execute(sa.select(probe.c.value).where(probe.c.id == new_id)).scalar_one()
        return stored


money = st.decimals(allow_nan=False, allow_infinity=False, places=18,
                    min_value=Decimal("-1e20"), max_value=Decimal("1e20"))
any_scale = st.builds(lambda digits, exp: Decimal(digits).scaleb(exp),
                      st.integers(-(10**30), 10**30), st.integers(-30, 10))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(money, any_scale))
def test_decimals_round_trip_exactly(probe_engine: Engine, value: Decimal) -> None:
    stored = _roundtrip(probe_engine, value)
    assert isinstance(stored, Decimal)
    assert stored == value
    # Same digits, in plain positional form, as exchanges expect them (0 and -0 aside).
    if value != 0:
        assert format(stored, "f") == format(value, "f")


def test_values_that_floats_would_corrupt_stay_exact(probe_engine: Engine) -> None:
    for text in ("0.1", "0.30000000000000000001", "123456789012345678.123456789012345678", "0.00000001"):
        assert format(_roundtrip(probe_engine, Decimal(text)), "f") == text


def test_floats_nan_and_infinity_are_refused(probe_engine: Engine) -> None:
    for bad, error in ((0.1, TypeError), (Decimal("NaN"), ValueError), (Decimal("Infinity"), ValueError)):
        with pytest.raises(sa.exc.StatementError) as info:
            _roundtrip(probe_engine, bad)
        assert isinstance(info.value.orig, error)


def test_timestamps_come_back_aware_utc(probe_engine: Engine) -> None:
    moment = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    with probe_engine.begin() as conn:
        conn.execute(probe.insert().values(id=1, at=moment))
        back = conn.execute(sa.select(probe.c.at)).scalar_one()
    assert back == moment
    assert back.tzinfo is not None and back.utcoffset() == timedelta(0)
    assert back.hour == 10


def test_naive_timestamps_are_refused(probe_engine: Engine) -> None:
    with pytest.raises(sa.exc.StatementError), probe_engine.begin() as conn:
        conn.execute(probe.insert().values(id=1, at=datetime(2026, 1, 1)))


def test_aware_utc_is_kept_to_the_microsecond(probe_engine: Engine) -> None:
    moment = datetime(2030, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    with probe_engine.begin() as conn:
        conn.execute(probe.insert().values(id=1, at=moment))
        assert conn.execute(sa.select(probe.c.at)).scalar_one() == moment
