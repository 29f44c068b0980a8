"""Ingested market data is named by venue, not by exchange name: two simex instances both
called "binance", an ingestor on each, and one worker running accounts on both. Each
account's bots get the candles, and its guard the tickers, of its own endpoint only; a
paper account on an endpoint's data shares that endpoint's stream and prices (not its
orders or balances); an account on an endpoint no ingestor publishes waits, is reported,
and is fed nothing of the others."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import cast

import pytest
from aio_pika.abc import AbstractIncomingMessage

from engine.simex_env import simex_venue
from sealbot.domain import ClientOrderId, Order, OrderType, Pair, Side
from sealbot.domain.candles import Candle
from sealbot.domain.market import MarketRules
from sealbot.engine.candles import FeedHub
from sealbot.engine.journal import AccountRecord
from sealbot.engine.market import fetch_snapshot, venue_key
from sealbot.engine.runner import RunnerSettings
from sealbot.engine.scaleout.broker import Topology
from sealbot.engine.scaleout.ingest import Ingestor, candle_body, market_key, ticker_key, venue_word
from sealbot.engine.scaleout.market_queue import MarketQueue
from sealbot.engine.scaleout.worker import Worker, WorkerOptions
from sealbot.services import inbox
from sealbot.simex import SimexServer
from sealbot.store import make_session_factory
from sealbot.venues.base import Venue
from sealbot.venues.ccxt_venue import CcxtVenue
from sealbot.venues.paper import PaperVenue

from .conftest import BROKER_URL
from .platform_env import seed_paper_signal_bot, until

BTC = Pair.parse("BTC/USDT")
RULES = {BTC: MarketRules(BTC, Decimal("0.01"), Decimal("0.00001"))}
HOUR_MS = 3_600_000


@pytest.fixture
def instances() -> Iterator[tuple[SimexServer, SimexServer, SimexServer]]:
    """Three simex instances, still (speed 0), hours apart in the replay: their candles
    and prices differ, so where a candle or a price came from shows."""
    start_ms = int(time.time() * 1000) // 60_000 * 60_000 - 10 * HOUR_MS
    with (SimexServer(speed=0, start_ms=start_ms) as a, SimexServer(speed=0, start_ms=start_ms) as b,
          SimexServer(speed=0, start_ms=start_ms) as c):
        for hours, sx in ((1, a), (4, b), (7, c)):
            sx.admin.set_clock(advance_seconds=hours * 3600)
        yield a, b, c


def test_a_venue_word_is_one_topic_word_per_endpoint() -> None:
    live = venue_key(CcxtVenue("binance"))
    testnet = venue_key(CcxtVenue("binance", urls={"api_base": "https://testnet.binance.vision"}))
    assert live != testnet and venue_word(live) != venue_word(testnet)
    for key in (live, testnet, "odd.name@http://a.b:1"):
        word = venue_word(key)
        assert "." not in word and "*" not in word and "#" not in word and word == venue_word(key)
    assert venue_word(live).startswith("binance@")
    assert market_key(live, BTC, "1m") == f"{venue_word(live)}.BTCUSDT.1m"
    assert ticker_key(testnet, BTC) == f"{venue_word(testnet)}.BTCUSDT.ticker"


async def test_each_account_gets_only_its_own_endpoints_candles_and_tickers(
        pg_url: str, topology: Topology, instances: tuple[SimexServer, SimexServer, SimexServer]) -> None:
    a, b, c = instances
    factory = make_session_factory(pg_url)
    live_a, paper_a, paper_b, paper_c = (seed_paper_signal_bot(factory, f"{n}@example.test")
                                         for n in ("live-a", "paper-a", "paper-b", "paper-c"))
    on_a = a.admin.create_account("live", {"USDT": "1000"})
    key = a.admin.create_key(on_a["id"])
    papers: dict[str, PaperVenue] = {}

    async def venue_for(account: AccountRecord) -> Venue:
        if account.id == live_a:  # a key on simex A: a live account there
            return simex_venue(a.base_url, str(key["key"]), str(key["secret"]))
        sx = {paper_a: a, paper_b: b, paper_c: c}[account.id]
        papers[account.id] = PaperVenue(dict(RULES), {"USDT": Decimal(1000)},
                                        data_venue=CcxtVenue("binance", urls={"api_base": sx.base_url}))
        return papers[account.id]

    worker = Worker(factory, venue_for, inbox.decode,
                    WorkerOptions(BROKER_URL, topology, worker_id="venues", market_data="ingest",
                                  runner=RunnerSettings(poll_interval=0.2)))
    assert worker.market is not None
    market = worker.market
    market.quiet_after = 60.0  # no heartbeat round of the test flags a stream; check(now) below does
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    data_a, data_b = (CcxtVenue("binance", urls={"api_base": sx.base_url}) for sx in (a, b))
    ingest_a, ingest_b = (Ingestor(venue, "binance", [BTC], BROKER_URL, topology, ticker_interval=1.0)
                          for venue in (data_a, data_b))  # no ingestor for simex C
    connections = [await ingest_a.connect(), await ingest_b.connect()]
    key_a, key_b, key_c = (f"binance@{sx.base_url}" for sx in (a, b, c))
    assert (ingest_a.identity, ingest_b.identity) == (key_a, key_b)  # the endpoint each polls, by default
    try:
        ids = (live_a, paper_a, paper_b, paper_c)
        assert await until(lambda: all(i in worker.runner.accounts for i in ids), 30)
        accs = {i: worker.runner.accounts[i] for i in ids}
        # streams and prices per endpoint: the paper account on A's data shares A's, nothing else
        assert [accs[i].feed for i in ids] == [key_a, key_a, key_b, key_c]
        assert [accs[i].market.key for i in ids] == [key_a, key_a, key_b, key_c]
        assert await until(lambda: market.feeds == {(key_a, BTC), (key_b, BTC), (key_c, BTC)}, 10)
        # an account is listed as soon as its start begins; its bots subscribe at the end of
        # it, after the first reconcile (which, when a price is missing, also reads the
        # exchange's markets: one more round trip)
        assert await until(lambda: worker.runner.hub.subscriber_count(key_a, BTC) == 2, 10)
        await asyncio.sleep(0.5)  # the binds are on their way to the broker
        assert await ingest_a.poll_once() >= 1 and await ingest_b.poll_once() >= 1
        assert await ingest_a.publish_tickers() == 1 and await ingest_b.publish_tickers() == 1
        last_a, last_b = [(await v.fetch_candles(BTC, "1m", limit=3))[-1].open_time for v in (data_a, data_b)]
        assert last_a != last_b  # two endpoints, two histories
        hub = worker.runner.hub
        assert await until(lambda: hub.last_open(key_a, BTC) == last_a and hub.last_open(key_b, BTC) == last_b, 10)
        ticker_a, ticker_b = await fetch_snapshot(data_a, BTC), await fetch_snapshot(data_b, BTC)
        assert ticker_a.reference_price != ticker_b.reference_price
        assert await until(lambda: all(accs[i].market.snapshot(BTC).reference_price is not None
                                       for i in ids[:3]), 10)
        for i in (live_a, paper_a):
            assert accs[i].market.snapshot(BTC).reference_price == ticker_a.reference_price
        assert accs[paper_b].market.snapshot(BTC).reference_price == ticker_b.reference_price
        assert await until(lambda: all(accs[i].ready.is_set() for i in ids[:3]), 10)
        # simex C: no ingestor. Its account is fed nothing of A's or B's, waits, and is reported
        assert hub.last_open(key_c, BTC) is None
        assert accs[paper_c].market.snapshot(BTC).reference_price is None
        assert accs[paper_c].needs_reconcile and not accs[paper_c].ready.is_set()
        # a quiet_after after C's stream was bound (A's and B's candles came 0.5 s and more later)
        assert market.check(now=market.last_candle[(key_c, BTC)] + market.quiet_after) == 1
        assert market.waiting == {(key_c, BTC)}
        assert worker.snapshot()["market_waiting"] == 1
        assert worker.runner.prices.fetches == 0 and c.admin.request_count("/api/v3/klines") == 0
        # sharing A's market data shares nothing else: the paper account's order stays its own
        order = await papers[paper_a].create_order(Order(ClientOrderId("b1", 1, "base"), BTC, Side.BUY,
                                                         OrderType.MARKET, Decimal("0.001")))
        assert order.filled == Decimal("0.001")
        assert await papers[paper_b].fetch_open_orders() == [] and papers[paper_b]._fills == []
        assert (await papers[paper_b].fetch_balances())["USDT"].free == Decimal(1000)
        assert a.admin.orders() == []  # nor reached simex A, where the live account trades
    finally:
        for connection in connections:
            await connection.close()
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)
        await data_a.close()
        await data_b.close()
        factory.kw["bind"].dispose()


class _Message:
    """What ``MarketQueue`` reads of a delivery."""

    def __init__(self, routing_key: str, body: bytes) -> None:
        self.routing_key, self.body, self.acked = routing_key, body, False

    async def ack(self) -> None:
        self.acked = True


async def test_a_queue_feeds_a_candle_only_to_the_venue_it_names_and_reports_silence() -> None:
    hub = FeedHub("1m")
    market = MarketQueue(Topology("unused", 1), "w", hub, quiet_after=150)
    live, testnet = "binance@https://api.binance.com", "binance@https://testnet.binance.vision"
    got: list[object] = []
    hub.subscribe(testnet, BTC, "bot", "1m", lambda _ident, event: got.append(event))
    await asyncio.sleep(0)  # the bind task (no connection: bound on open)
    assert market.feeds == {(testnet, BTC)} and hub.by_venue
    at = datetime(2026, 1, 1, tzinfo=UTC)
    candle = Candle(BTC, "1m", at, Decimal(1), Decimal(2), Decimal(1), Decimal(2), Decimal(3))
    for key, venue in ((market_key(live, BTC, "1m"), live),  # the live exchange's: not bound here
                       (market_key(live, BTC, "1m"), testnet)):  # a body naming another venue than its key
        message = _Message(key, candle_body(venue, candle))
        await market._on_candle(cast(AbstractIncomingMessage, message))
        assert message.acked
    assert market.ignored == 2 and hub.last_open(testnet, BTC) is None and not got
    bound = market.last_candle[(testnet, BTC)]
    assert market.check(now=bound + 149) == 0
    assert market.check(now=bound + 150.5) == 1 and market.waiting == {(testnet, BTC)}
    await market._on_candle(cast(AbstractIncomingMessage, _Message(market_key(testnet, BTC, "1m"),
                                                                    candle_body(testnet, candle))))
    assert hub.last_open(testnet, BTC) == at and market.waiting == set()
