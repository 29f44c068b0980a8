"""The trigger index wakes exactly the bots ``wakes`` would, in subscription order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealbot.bots.base import Interest
from sealbot.domain import Candle, CandleClosed, Pair
from sealbot.engine.candles import FeedHub
from sealbot.engine.live import wakes
from sealbot.engine.triggers import TriggerIndex

BTC = Pair("BTC", "USDT")
T0 = datetime(2026, 1, 1, tzinfo=UTC)

prices = st.integers(min_value=90, max_value=110).map(Decimal) | st.decimals(
    min_value=Decimal(90), max_value=Decimal(110), places=2)
times = st.integers(min_value=0, max_value=20).map(lambda m: T0 + timedelta(minutes=m))
interests = st.builds(Interest, below=st.none() | prices, above=st.none() | prices, until=st.none() | times,
                      every_candle=st.booleans())


@st.composite
def candles(draw: st.DrawFn) -> Candle:
    a, b = draw(prices), draw(prices)
    opened = draw(times)
    return Candle(BTC, "1m", opened, a, max(a, b), min(a, b), b, Decimal(1))


# a history of index operations: (key, interest) sets, (key, None) discards, (key, bool) holds
operations = st.lists(st.tuples(st.integers(min_value=0, max_value=15), interests | st.none() | st.booleans()),
                      max_size=60)


@settings(max_examples=300)
@given(ops=operations, probes=st.lists(candles(), min_size=1, max_size=5))
def test_the_index_wakes_exactly_whom_the_brute_force_rule_wakes(
        ops: list[tuple[int, Interest | bool | None]], probes: list[Candle]) -> None:
    index = TriggerIndex()
    current: dict[int, Interest] = {}
    held: set[int] = set()
    for key, op in ops:
        if isinstance(op, Interest):
            index.set(key, op)
            current[key] = op
        elif op is None:
            index.discard(key)
            current.pop(key, None)
            held.discard(key)
        elif key in current:
            index.hold(key, op)
            (held.add if op else held.discard)(key)
    assert len(index) == len(current)
    for candle in probes:
        expected = sorted(k for k, interest in current.items()
                          if k in held or wakes(interest, CandleClosed(candle)))
        assert index.woken(candle.low, candle.high, candle.close_time) == expected


def test_a_trigger_exactly_at_the_candles_extreme_wakes() -> None:
    index = TriggerIndex()
    index.set(1, Interest(below=Decimal("99.5")))
    index.set(2, Interest(above=Decimal("101.25")))
    index.set(3, Interest(until=T0 + timedelta(minutes=1)))
    index.set(4, Interest(below=Decimal("99.49"), above=Decimal("101.26")))
    assert index.woken(Decimal("99.5"), Decimal("101.25"), T0 + timedelta(minutes=1)) == [1, 2, 3]
    assert index.woken(Decimal("99.51"), Decimal("101.24"), T0 + timedelta(seconds=59)) == []


def test_removing_a_trigger_that_is_not_there_is_an_error() -> None:
    index = TriggerIndex()
    index.set(1, Interest(below=Decimal(1)))
    index._below.clear()  # corrupt it: a missing entry must not pass silently
    with pytest.raises(KeyError):
        index.set(1, Interest(below=Decimal(2)))


def _minute(i: int, low: str, high: str) -> Candle:
    return Candle(BTC, "1m", T0 + timedelta(minutes=i), Decimal(low), Decimal(high), Decimal(low), Decimal(high),
                  Decimal(1))


def test_the_hub_delivers_a_candle_only_to_the_subscribers_it_can_wake() -> None:
    hub = FeedHub("1m")
    got: list[str] = []
    for name in ("plain", "dip", "spike", "asleep"):
        hub.subscribe("binance", BTC, name, "1m", lambda ident, _e: got.append(ident))
    hub.set_interest("binance", BTC, "dip", Interest(below=Decimal(95)))
    hub.set_interest("binance", BTC, "spike", Interest(above=Decimal(105)))
    hub.set_interest("binance", BTC, "asleep", Interest())
    assert hub.publish("binance", _minute(0, "96", "104")) == 1 and got == ["plain"]
    got.clear()
    hub.publish("binance", _minute(1, "94", "106"))
    assert got == ["plain", "dip", "spike"]
    got.clear()
    hub.hold_awake("binance", BTC, "asleep", True)  # its owner has events queued for it
    hub.publish("binance", _minute(2, "100", "100"))
    assert got == ["plain", "asleep"]
    got.clear()
    hub.hold_awake("binance", BTC, "asleep", False)
    hub.unsubscribe("binance", BTC, "plain")
    hub.publish("binance", _minute(3, "100", "100"))
    assert got == []
