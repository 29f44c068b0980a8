"""One stream per (exchange, pair), aggregated per timeframe and fanned out to every bot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealbot.domain import Candle, CandleClosed, Event, IndicatorUpdated, Pair
from sealbot.engine.candles import CandleAggregator, FeedHub, IndicatorSpec

BTC = Pair("BTC", "USDT")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def minute(i: int, close: int | str = 100, pair: Pair = BTC) -> Candle:
    c = Decimal(close)
    return Candle(pair, "1m", T0 + timedelta(minutes=i), c, c + 2, c - 1, c, Decimal(1))


def test_five_one_minute_candles_make_one_five_minute_candle() -> None:
    agg = CandleAggregator("1m", "5m")
    out: list[Candle] = []
    for i, close in enumerate([100, 105, 95, 101, 103]):
        out += agg.add(minute(i, close))
    assert len(out) == 1
    five = out[0]
    assert (five.open, five.high, five.low, five.close, five.volume) == (
        Decimal(100), Decimal(107), Decimal(94), Decimal(103), Decimal(5))
    assert five.open_time == T0 and five.close_time == T0 + timedelta(minutes=5)


def test_a_gap_closes_the_bucket_when_the_next_one_starts() -> None:
    agg = CandleAggregator("1m", "5m")
    assert agg.add(minute(0)) == [] and agg.add(minute(1)) == []
    out = agg.add(minute(7))  # minutes 2-4 never came
    assert [c.open_time for c in out] == [T0]


def test_a_timeframe_that_is_not_a_multiple_of_the_base_is_refused() -> None:
    with pytest.raises(ValueError, match="multiple"):
        CandleAggregator("5m", "7m")


@given(closes=st.lists(st.integers(min_value=1, max_value=10_000), min_size=15, max_size=60))
def test_aggregated_volume_and_extremes_match_the_base_candles(closes: list[int]) -> None:
    agg = CandleAggregator("1m", "15m")
    out: list[Candle] = []
    for i, close in enumerate(closes):
        out += agg.add(minute(i, close))
    assert len(out) == len(closes) // 15
    for k, candle in enumerate(out):
        chunk = closes[15 * k: 15 * k + 15]
        assert candle.high == max(chunk) + 2 and candle.low == min(chunk) - 1
        assert candle.volume == 15 and candle.close == chunk[-1]


def test_one_stream_fans_out_to_every_bot_at_its_own_timeframe() -> None:
    hub = FeedHub("1m")
    got: dict[str, list[Event]] = {}

    def sink(ident: str, event: Event) -> None:
        got.setdefault(ident, []).append(event)

    opened: list[tuple[str, Pair]] = []
    hub.on_first_subscriber = lambda ex, pair: opened.append((ex, pair))
    for i in range(100):
        hub.subscribe("binance", BTC, f"bot{i}", "1m" if i % 2 else "5m", sink)
    assert opened == [("binance", BTC)] and hub.streams() == [("binance", BTC)]
    for i in range(10):
        hub.publish("binance", minute(i))
    assert len(got["bot1"]) == 10 and len(got["bot0"]) == 2
    assert all(isinstance(e, CandleClosed) and e.candle.timeframe == "5m" for e in got["bot0"])


def test_a_candle_already_seen_is_not_delivered_twice_and_other_pairs_are_separate() -> None:
    hub = FeedHub("1m")
    got: list[Event] = []
    hub.subscribe("binance", BTC, "a", "1m", lambda _i, e: got.append(e))
    hub.publish("binance", minute(0))
    hub.publish("binance", minute(0))
    hub.publish("binance", minute(1, pair=Pair("ETH", "USDT")))
    hub.publish("kucoin", minute(1))
    assert len(got) == 1


def test_the_stream_closes_when_its_last_bot_leaves() -> None:
    hub = FeedHub("1m")
    closed: list[tuple[str, Pair]] = []
    hub.on_last_unsubscribed = lambda ex, pair: closed.append((ex, pair))
    hub.subscribe("binance", BTC, "a", "1m", lambda *_: None)
    hub.subscribe("binance", BTC, "b", "1m", lambda *_: None)
    hub.unsubscribe("binance", BTC, "a")
    assert closed == [] and hub.subscriber_count("binance", BTC) == 1
    hub.unsubscribe("binance", BTC, "b")
    assert closed == [("binance", BTC)] and hub.streams() == []


def test_rsi_is_computed_once_and_delivered_as_indicator_updates() -> None:
    hub = FeedHub("1m")
    got: dict[str, list[IndicatorUpdated]] = {"a": [], "b": [], "c": []}

    def sink(ident: str, event: Event) -> None:
        if isinstance(event, IndicatorUpdated):
            got[ident].append(event)

    rsi = IndicatorSpec("rsi", 3, "1m")
    hub.subscribe("binance", BTC, "a", "1m", sink, (rsi,))
    hub.subscribe("binance", BTC, "b", "5m", sink, (rsi,))
    hub.subscribe("binance", BTC, "c", "1m", sink)
    for i, close in enumerate([1, 2, 3, 2, 5, 6]):
        hub.publish("binance", minute(i, close))
    # talipp's RSI(3) over 1,2,3,2,5,6 -> 66.67, 86.67, 89.74 on the last three candles
    assert [u.value for u in got["a"]] == [Decimal("66.6667"), Decimal("86.6667"), Decimal("89.7436")]
    assert got["a"] == got["b"] and got["c"] == []
    assert got["a"][-1].at == T0 + timedelta(minutes=6) and got["a"][-1].name == "rsi"


def test_unknown_indicators_are_refused() -> None:
    with pytest.raises(ValueError, match="macdx"):
        IndicatorSpec("macdx", 3, "1m")


async def test_a_poll_answered_as_a_candle_closes_does_not_publish_it_half_formed() -> None:
    """REST answers with the forming candle too; the answer takes time, and the minute may
    close meanwhile. A candle counts as closed only if it had closed when the poll asked:
    judged by the time after the answer, the forming candle's partial values would be
    published as the closed candle's (then never corrected: a candle is published once)."""
    from sealbot.engine.candles import PollingSource
    from sealbot.engine.clock import FakeClock

    from .fakes import FakeVenue

    clock = FakeClock(start=minute(1).open_time.timestamp() + 50)  # 50 s into minute 1
    venue = FakeVenue()
    venue.candles = [minute(0, close=100), minute(1, close=101)]  # minute 1 as it stands at 50 s
    fetch = venue.fetch_candles

    async def slow_answer(*args: object, **kwargs: object) -> list[Candle]:
        answer = await fetch(*args, **kwargs)  # type: ignore[arg-type]
        clock.advance(15)  # the answer arrives after minute 1 closed
        return answer

    venue.fetch_candles = slow_answer  # type: ignore[method-assign]
    hub = FeedHub("1m")
    got: list[Candle] = []
    hub.subscribe("f", BTC, "bot", "1m", lambda _ident, event: got.append(event.candle)
                  if isinstance(event, CandleClosed) else None)
    source = PollingSource(hub, "f", venue, BTC, clock=clock)
    await source.poll_once()
    assert [c.open_time for c in got] == [minute(0).open_time]  # minute 1 was still forming when asked
    venue.candles = [minute(0, close=100), minute(1, close=102)]  # minute 1 as it closed
    await source.poll_once()
    assert [(c.open_time, c.close) for c in got] == [(minute(0).open_time, Decimal(100)),
                                                     (minute(1).open_time, Decimal(102))]
