"""Candles over simex's Binance websocket through the unmodified ccxt.pro client: closed
candles reach the hub's subscribers once and in order, a dropped stream falls back to
REST polling and back-fills, and stopping closes the socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sealbot.engine.candles import FeedHub, PollingSource, feed_key
from sealbot.engine.runner import InProcessRunner, RunnerSettings
from sealbot.engine.streaming import StreamingSource, stream_exchange
from sealbot.simex import SimexServer
from sealbot.venues.ccxt_venue import CcxtVenue

from .fakes import FakeVenue
from .simex_env import MarketClock
from .stream_env import PAIR, START, Feed, advance, same_as_rest, until

KLINES = "/api/v3/klines"


@pytest.fixture
async def feed() -> AsyncIterator[Feed]:
    with SimexServer(speed=0, start_ms=START, ws_push_interval=0.02) as sx:
        f = Feed(sx, "binance")
        try:
            yield f
        finally:
            await f.source.stop()
            await f.venue.close()


async def test_closed_candles_stream_to_subscribers_once_in_order_as_rest_has_them(feed: Feed) -> None:
    await feed.venue.load_markets()  # as an account's venue has: the stream takes its markets, asks for none
    feed.sx.admin.reset_requests()
    feed.source.start()
    await until(lambda: feed.source.streaming)
    await advance(feed.sx, 5)
    await until(lambda: len(feed.got) >= 5)
    assert feed.opens()[:5] == [START + i * 60_000 for i in range(5)]
    assert len(set(feed.opens())) == len(feed.opens())
    await same_as_rest(feed, 5)
    assert feed.source.streamed >= 3  # from the stream, not from the safety-net polls
    assert feed.sx.admin.request_count("/api/v3/exchangeInfo") == 0
    assert feed.source.sessions == 1


async def test_a_dropped_stream_falls_back_to_polling_and_back_fills_without_gap(feed: Feed) -> None:
    feed.source.start()
    await until(lambda: feed.source.streaming)
    await advance(feed.sx, 2)
    await until(lambda: len(feed.got) >= 2)
    assert feed.sx.streams is not None
    polls = feed.sx.admin.request_count(KLINES)
    for _ in range(3):  # cut it while the clock moves on: the candles of the drop come from REST
        feed.sx.streams.drop_all()
        await advance(feed.sx, 1)
    await until(lambda: feed.source.sessions >= 2 and feed.source.streaming)
    assert feed.sx.admin.request_count(KLINES) >= polls + 2  # polled while down, back-filled on return
    await advance(feed.sx, 2)
    await until(lambda: len(feed.got) >= 7)
    assert feed.opens()[:7] == [START + i * 60_000 for i in range(7)]
    assert len(set(feed.opens())) == len(feed.opens())
    await same_as_rest(feed, 7)  # no candle half-seen before a drop published as if complete


async def test_simex_stopped_and_restarted_the_source_polls_then_streams_again() -> None:
    with SimexServer(speed=0, start_ms=START, ws_push_interval=0.02) as sx:
        feed = Feed(sx, "binance")
        port = int(sx.base_url.rsplit(":", 1)[1])
        feed.source.start()
        try:
            await until(lambda: feed.source.streaming)
            await advance(sx, 2)
            await until(lambda: len(feed.got) >= 2)
            sx.stop()
            await until(lambda: not feed.source.streaming)
            with SimexServer(speed=0, start_ms=START, ws_push_interval=0.02, port=port) as again:
                again.admin.set_clock(advance_seconds=2 * 60 + 30)  # where the first one stood
                feed.source.clock = feed.source.poller.clock = MarketClock(again)
                await until(lambda: feed.source.streaming, 10)
                await advance(again, 3)
                await until(lambda: len(feed.got) >= 5)
            assert feed.opens()[:5] == [START + i * 60_000 for i in range(5)]
            assert len(set(feed.opens())) == len(feed.opens())
        finally:
            await feed.source.stop()
            await feed.venue.close()


async def test_a_stream_that_cannot_start_leaves_the_pair_polled() -> None:
    """KuCoin's ccxt.pro stream needs a connect token first: with every bullet-public
    answered 503, every try fails, and the candles come over REST all the same."""
    with SimexServer(speed=0, ws_push_interval=0.02) as sx:  # now: ccxt asks KuCoin for a window of wall time
        assert sx.exchange is not None
        sx.admin.add_fault("error_5xx", path_prefix="/api/v1/bullet-public", value=503)
        start = sx.exchange.clock.start_ms
        venue = CcxtVenue("kucoin", urls={"api_base": sx.base_url}, timeout_ms=2000)
        hub = FeedHub("1m")
        key = feed_key("kucoin", venue, by_venue=True)
        got: list[int] = []
        hub.subscribe(key, PAIR, "bot", "1m",
                      lambda _i, e: got.append(int(e.candle.open_time.timestamp() * 1000)))  # type: ignore[attr-defined]
        source = StreamingSource(hub, key, venue, PAIR, interval=0.1, clock=MarketClock(sx), retry_min=0.1,
                                 retry_max=0.2)
        source.start()
        try:
            await advance(sx, 3)
            await until(lambda: len(got) >= 3)
            assert got[:3] == [start + i * 60_000 for i in range(3)]
            assert source.sessions == 0 and not source.streaming and source.streamed == 0
        finally:
            await source.stop()
            await venue.close()


async def test_stopping_closes_the_socket_and_leaves_no_task(feed: Feed) -> None:
    before = asyncio.all_tasks()
    feed.source.start()
    await until(lambda: feed.source.streaming)
    assert feed.sx.streams is not None and feed.sx.streams.connections == 1
    await feed.source.stop()
    await until(lambda: feed.sx.streams is not None and feed.sx.streams.connections == 0, 3)
    await asyncio.sleep(0.05)
    assert {t for t in asyncio.all_tasks() - before if not t.done()} == set()


async def test_the_stream_comes_from_the_venue_endpoint_never_the_real_exchange() -> None:
    on_simex = CcxtVenue("binance", urls={"api_base": "http://127.0.0.1:8001"})
    real = CcxtVenue("binance")
    testnet = CcxtVenue("binance", sandbox=True)
    try:
        pro: Any = stream_exchange(on_simex)
        assert pro.urls["api"]["ws"]["spot"] == "ws://127.0.0.1:8001/ws"
        assert pro.urls["api"]["public"] == "http://127.0.0.1:8001/api/v3"
        assert not pro.apiKey and not pro.secret
        assert stream_exchange(real).urls["api"]["ws"]["spot"] == "wss://stream.binance.com:9443/ws"
        assert "testnet" in stream_exchange(testnet).urls["api"]["ws"]["spot"]
        split = CcxtVenue("binance", urls={"api_base": "http://127.0.0.1:8001",
                                           "api": {"sapi": "http://127.0.0.1:9999/sapi/v1"}})
        assert stream_exchange(split) is None  # two hosts: which streams cannot be told
        await split.close()
        assert stream_exchange(FakeVenue()) is None  # not a ccxt venue: polled
    finally:
        for venue in (on_simex, real, testnet):
            await venue.close()


def test_the_runner_streams_ccxt_venues_and_polls_when_told_or_not_offered() -> None:
    def source_for(venue: Any, settings: RunnerSettings) -> object:
        runner = InProcessRunner(journal=None, venue_factory=None, settings=settings)  # type: ignore[arg-type]
        runner.accounts = {"a": type("A", (), {"feed": "f", "venue": venue})()}  # type: ignore[dict-item]
        runner.feeds.open("f", PAIR)
        return runner.feeds.sources[("f", PAIR)]

    venue = CcxtVenue("binance", urls={"api_base": "http://127.0.0.1:8001"})
    quiet = RunnerSettings(background=False)
    assert isinstance(source_for(venue, quiet), StreamingSource)
    assert type(source_for(venue, RunnerSettings(background=False, stream_feeds=False))) is PollingSource
    assert type(source_for(FakeVenue(), quiet)) is PollingSource

