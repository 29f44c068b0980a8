"""``sealbot ingest`` streams where the venue offers a kline websocket: the embedded
engine's streaming sources, all the ingestor's pairs on one connection, each closed
candle published once and in order, value for value what REST serves."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aio_pika

from engine.simex_env import MarketClock
from sealbot.domain import Pair
from sealbot.domain.candles import Candle
from sealbot.engine.scaleout.broker import Topology
from sealbot.engine.scaleout.ingest import Ingestor, declare_market, parse_candle, venue_word
from sealbot.simex import SimexServer
from sealbot.venues.ccxt_venue import CcxtVenue

from .conftest import BROKER_URL

START = 1_700_000_040_000  # a minute boundary
BTC, XRP = Pair.parse("BTC/USDT"), Pair.parse("XRP/ETH")  # simex's two 1-minute markets


async def until(check: object, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_the_ingestor_streams_its_pairs_on_one_connection_and_publishes_each_candle_once(
        topology: Topology) -> None:
    with SimexServer(speed=0, start_ms=START, ws_push_interval=0.02) as sx:
        assert sx.streams is not None
        venue = CcxtVenue("binance", urls={"api_base": sx.base_url}, timeout_ms=3000)
        await venue.load_markets()
        ingestor = Ingestor(venue, "binance", [BTC, XRP], BROKER_URL, topology, interval=0.2, ticker_interval=None,
                            clock=MarketClock(sx))
        got: dict[Pair, list[Candle]] = {BTC: [], XRP: []}
        connection = await aio_pika.connect(BROKER_URL)
        stop = asyncio.Event()
        task: asyncio.Task[None] | None = None
        try:
            channel = await connection.channel()
            market = await declare_market(channel, topology)
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            await queue.bind(market, f"{venue_word(ingestor.identity)}.*.1m")

            async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                _venue, candle = parse_candle(message.body)
                got[candle.pair].append(candle)
                await message.ack()

            await queue.consume(take)
            task = asyncio.create_task(ingestor.run(stop))
            await until(lambda: ingestor.streams is not None
                        and all(s.streaming for s in ingestor.streams.sources.values()))
            for _ in range(3 * 3):  # three minutes, 20 s a step, the pushes going out between
                sx.admin.set_clock(advance_seconds=20)
                await asyncio.sleep(0.05)
            await until(lambda: all(len(c) >= 3 for c in got.values()))
            assert ingestor.streams is not None
            assert sx.streams.accepted == 1 and sx.streams.stream_counts() == [2]  # both pairs, one socket
            assert all(s.streamed >= 1 for s in ingestor.streams.sources.values())  # not only the polls
            for pair, candles in got.items():
                opens = [int(c.open_time.timestamp() * 1000) for c in candles]
                assert opens[:3] == [START + i * 60_000 for i in range(3)] and len(set(opens)) == len(opens)
                rest = await venue.fetch_candles(pair, "1m", since=datetime.fromtimestamp(START / 1000, UTC), limit=3)
                assert [(c.open, c.high, c.low, c.close, c.volume) for c in candles[:3]] == [
                    (c.open, c.high, c.low, c.close, c.volume) for c in rest]
        finally:
            stop.set()
            if task is not None:
                await asyncio.wait_for(task, 10)
            await connection.close()
            await venue.close()
        await until(lambda: sx.streams is not None and sx.streams.connections == 0, 3)  # stopping closed it


async def test_the_ingestor_polls_when_told_not_to_stream(topology: Topology) -> None:
    with SimexServer(speed=0, start_ms=START, ws_push_interval=0.02) as sx:
        assert sx.streams is not None
        venue = CcxtVenue("binance", urls={"api_base": sx.base_url}, timeout_ms=3000)
        ingestor = Ingestor(venue, "binance", [BTC], BROKER_URL, topology, interval=0.1, ticker_interval=None,
                            clock=MarketClock(sx), stream=False)
        stop = asyncio.Event()
        task = asyncio.create_task(ingestor.run(stop))
        try:
            sx.admin.set_clock(advance_seconds=130)
            await until(lambda: ingestor.published >= 2)
            assert ingestor.streams is None and sx.streams.accepted == 0
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await venue.close()
