"""Candle streams share websocket connections within Binance's limits, checked against
simex, which enforces them as Binance does: many pairs on one connection, a second one
past the per-connection stream cap, subscriptions paced under the message rate (simex
cuts a connection that goes past it), new connections counted, and the last stream to
stop closes its connection."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from sealbot.domain import CandleClosed, Event, Pair
from sealbot.domain.evolve import evolve
from sealbot.engine.candles import FeedHub, feed_key
from sealbot.engine.runner import InProcessRunner, RunnerSettings
from sealbot.engine.stream_pool import StreamLimits, StreamPool, StreamRefused
from sealbot.engine.streaming import StreamingSource
from sealbot.simex import SimexServer
from sealbot.simex.markets import DEFAULT_MARKETS
from sealbot.venues.ccxt_venue import CcxtVenue

from .simex_env import MarketClock
from .test_engine_streaming import START, advance, until

ONE_MINUTE = DEFAULT_MARKETS[2]  # a market with 1-minute candles: its data serves the test pairs
PAIRS = [Pair(f"C{i:02d}", "USDT") for i in range(40)]
MARKETS = (*DEFAULT_MARKETS, *(evolve(ONE_MINUTE, base=p.base, quote=p.quote) for p in PAIRS))


class Streams:
    """Hub, venue and one streaming source per pair, all on one pool (as the runner has)."""

    def __init__(self, sx: SimexServer, pairs: list[Pair], limits: StreamLimits) -> None:
        self.sx = sx
        self.venue = CcxtVenue("binance", urls={"api_base": sx.base_url}, timeout_ms=5000)
        self.hub = FeedHub("1m")
        self.key = feed_key("binance", self.venue, by_venue=True)
        self.pool = StreamPool(limits)
        self.got: dict[Pair, list[int]] = {p: [] for p in pairs}
        self.sources: dict[Pair, StreamingSource] = {}
        for pair in pairs:
            self.hub.subscribe(self.key, pair, "bot", "1m", self._sink)
            self.sources[pair] = StreamingSource(self.hub, self.key, self.venue, pair, interval=0.2,
                                                 clock=MarketClock(sx), retry_min=0.2, retry_max=0.4, pool=self.pool)

    def _sink(self, ident: str, event: Event) -> None:
        assert isinstance(event, CandleClosed)
        self.got[event.candle.pair].append(int(event.candle.open_time.timestamp() * 1000))

    async def start(self) -> None:
        await self.venue.load_markets()
        for source in self.sources.values():
            source.start()

    def all_streaming(self) -> bool:
        return all(s.streaming for s in self.sources.values())

    async def close(self) -> None:
        for source in self.sources.values():
            await source.stop()
        await self.venue.close()

    @property
    def ws(self) -> Any:
        assert self.sx.streams is not None
        return self.sx.streams


@pytest.fixture
def simex(request: pytest.FixtureRequest) -> Iterator[SimexServer]:
    with SimexServer(speed=0, start_ms=START, ws_push_interval=0.05, markets=MARKETS,
                     **getattr(request, "param", {})) as sx:
        yield sx


async def every_pair_gets_its_candles(streams: Streams, count: int = 2) -> None:
    await advance(streams.sx, count)
    await until(lambda: all(len(got) >= count for got in streams.got.values()), 15)
    for got in streams.got.values():
        assert got[:count] == [START + i * 60_000 for i in range(count)]
        assert len(set(got)) == len(got)


@pytest.mark.parametrize("simex", [{"ws_max_messages": 5, "ws_message_window": 0.1}], indirect=True)
async def test_forty_pairs_share_one_connection_and_the_last_to_stop_closes_it(simex: SimexServer) -> None:
    streams = Streams(simex, PAIRS, StreamLimits(messages_per_second=40))  # simex: 50 a second
    try:
        await streams.start()
        await until(streams.all_streaming, 15)
        assert (streams.ws.accepted, streams.ws.connections, streams.ws.stream_counts()) == (1, 1, [40])
        assert len(streams.pool.connections()) == 1 and streams.pool.dials == 1
        await every_pair_gets_its_candles(streams)
        assert all(s.streamed >= 1 for s in streams.sources.values())  # from the stream, not only polls
        for pair in PAIRS[:39]:  # stopping one unsubscribes it; the connection stays for the others
            await streams.sources[pair].stop()
        await until(lambda: streams.ws.stream_counts() == [1], 5)
        assert streams.ws.connections == 1
        await streams.sources[PAIRS[39]].stop()
        await until(lambda: streams.ws.connections == 0, 3)
        assert streams.pool.connections() == [] and streams.ws.flooded == 0
    finally:
        await streams.close()


@pytest.mark.parametrize("simex", [{"ws_max_streams": 6, "ws_max_messages": 5, "ws_message_window": 0.1}],
                         indirect=True)
async def test_past_the_per_connection_stream_cap_a_second_connection_carries_the_rest(simex: SimexServer) -> None:
    streams = Streams(simex, PAIRS[:10], StreamLimits(max_streams=6, messages_per_second=40))
    try:
        await streams.start()
        await until(streams.all_streaming, 15)
        assert (streams.ws.accepted, streams.ws.stream_counts()) == (2, [6, 4])
        assert [c.load for c in streams.pool.connections()] == [6, 4]
        await every_pair_gets_its_candles(streams)
        assert streams.ws.flooded == 0
    finally:
        await streams.close()


async def test_a_burst_of_subscriptions_stays_under_binances_message_rate(simex: SimexServer) -> None:
    """simex at Binance's own limit (5 messages a second); the engine at its default pace."""
    streams = Streams(simex, PAIRS[:12], StreamLimits())
    loop = asyncio.get_running_loop()
    try:
        began = loop.time()
        await streams.start()
        await until(streams.all_streaming, 15)
        took = loop.time() - began
        assert took >= 11 / StreamLimits().messages_per_second * 0.9  # paced, not sent at once
        assert streams.ws.flooded == 0 and streams.ws.accepted == 1
        assert all(s.sessions == 1 for s in streams.sources.values())  # never cut, never resubscribed
        await every_pair_gets_its_candles(streams)
        assert streams.ws.flooded == 0 and streams.ws.accepted == 1
    finally:
        await streams.close()


async def test_unpaced_subscriptions_are_cut_by_simex_and_the_pairs_poll(simex: SimexServer) -> None:
    """What the pacing prevents: the same burst at 1,000 messages a second trips the limit."""
    streams = Streams(simex, PAIRS[:12], StreamLimits(messages_per_second=1000))
    try:
        await streams.start()
        await until(lambda: streams.ws.flooded >= 1, 10)
        await advance(simex, 1)  # the candles come over REST all the same
        await until(lambda: all(len(got) >= 1 for got in streams.got.values()), 10)
    finally:
        await streams.close()


async def test_new_connections_past_the_window_stay_on_polling_and_retry_later(simex: SimexServer) -> None:
    streams = Streams(simex, PAIRS[:1], StreamLimits(max_connections=1, connection_window=2.0))
    source = next(iter(streams.sources.values()))
    try:
        await streams.start()
        await until(lambda: source.streaming)
        streams.ws.drop_all()
        await until(lambda: not source.streaming)
        await advance(simex, 2)  # the redial is refused here, not by the exchange: REST has the candles
        await until(lambda: len(streams.got[PAIRS[0]]) >= 2, 10)
        assert streams.ws.accepted == 1 and streams.ws.refused == 0 and source.sessions == 1
        await until(lambda: source.streaming and source.sessions == 2, 10)  # the window moved on
        assert streams.ws.accepted == 2 and streams.pool.dials == 2
    finally:
        await streams.close()


def test_the_connection_window_counts_dials_per_endpoint() -> None:
    now = [0.0]
    pool = StreamPool(StreamLimits(max_connections=3, connection_window=300.0), lambda: now[0])
    for _ in range(3):
        pool.count_dial("a")
    with pytest.raises(StreamRefused, match="3 new websocket connections in 300 s"):
        pool.count_dial("a")
    pool.count_dial("b")  # another endpoint has its own window
    now[0] = 300.0
    pool.count_dial("a")
    assert pool.dials == 5
    with pytest.raises(ValueError, match="messages_per_second"):
        StreamLimits(messages_per_second=0)


def test_the_runners_streams_share_its_pool_with_its_limits() -> None:
    limits = StreamLimits(max_streams=10)
    runner = InProcessRunner(journal=None, venue_factory=None,  # type: ignore[arg-type]
                             settings=RunnerSettings(background=False, stream_limits=limits))
    venue = CcxtVenue("binance", urls={"api_base": "http://127.0.0.1:8001"})
    runner.accounts = {"a": type("A", (), {"feed": "f", "venue": venue})()}  # type: ignore[dict-item]
    runner.feeds.open("f", PAIRS[0])
    runner.feeds.open("f", PAIRS[1])
    sources = [runner.feeds.sources[("f", p)] for p in PAIRS[:2]]
    assert all(isinstance(s, StreamingSource) and s.pool is runner.streams for s in sources)
    assert runner.streams.limits is limits


@pytest.mark.parametrize("simex", [{"ws_max_messages": 5, "ws_message_window": 0.1}], indirect=True)
async def test_a_pair_stopped_and_started_again_is_subscribed_again_on_the_same_connection(
        simex: SimexServer) -> None:
    streams = Streams(simex, PAIRS[:3], StreamLimits(messages_per_second=40))
    again = streams.sources[PAIRS[0]]
    try:
        await streams.start()
        await until(streams.all_streaming, 10)
        await again.stop()  # its UNSUBSCRIBE is queued; started again before it is answered
        again.start()
        await until(lambda: again.streaming and again.sessions == 2, 10)
        await until(lambda: streams.ws.stream_counts() == [3], 5)
        assert streams.ws.accepted == 1 and len(streams.pool.connections()) == 1
        await every_pair_gets_its_candles(streams)
    finally:
        await streams.close()
