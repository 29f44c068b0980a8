"""An indicator value is known when its candle closes: the feed hands it to bots before
that close, so a bot deciding on the close (a DCA bot's RSI start condition) uses the
current value. (The feed once delivered each close first and its RSI after it, so live
bots acted one candle late compared with the backtester; the parity test found it.)"""

from __future__ import annotations

from datetime import datetime

from sealbot.domain import CandleClosed, Event, IndicatorUpdated
from sealbot.engine.candles import FeedHub, IndicatorSpec

from .test_engine_candles import BTC, minute


def _heard(bot_timeframe: str, rsi: IndicatorSpec) -> list[tuple[str, datetime]]:
    hub = FeedHub("1m")
    heard: list[tuple[str, datetime]] = []

    def sink(_ident: str, event: Event) -> None:
        if isinstance(event, IndicatorUpdated):
            heard.append((f"rsi {event.timeframe}", event.at))
        elif isinstance(event, CandleClosed):
            heard.append((f"close {event.candle.timeframe}", event.candle.close_time))

    # another bot on the stream first, so the one-minute aggregation exists before the RSI's
    hub.subscribe("binance", BTC, "other", "1m", lambda *_: None)
    hub.subscribe("binance", BTC, "bot", bot_timeframe, sink, (rsi,))
    for i, close in enumerate([100, 102, 101, 104, 103, 107, 106, 110, 108, 111, 109, 112] * 3):
        hub.publish("binance", minute(i, close))
    return heard


def test_engine_feed_delivers_a_candles_rsi_before_its_close() -> None:
    heard = _heard("1m", IndicatorSpec("rsi", 3, "1m"))
    rsis = [at for kind, at in heard if kind == "rsi 1m"]
    assert len(rsis) == 33  # RSI(3) from the 4th of 36 closes on
    for at in rsis:
        assert heard.index(("rsi 1m", at)) == heard.index(("close 1m", at)) - 1


def test_engine_feed_delivers_a_coarser_rsi_before_the_one_minute_close_that_completes_it() -> None:
    heard = _heard("1m", IndicatorSpec("rsi", 2, "5m"))
    rsis = [at for kind, at in heard if kind == "rsi 5m"]
    assert len(rsis) == 5  # 7 five-minute candles close in 36 minutes; RSI(2) from the 3rd on
    for at in rsis:
        assert heard.index(("rsi 5m", at)) < heard.index(("close 1m", at))
