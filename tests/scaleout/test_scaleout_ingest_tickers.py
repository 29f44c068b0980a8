"""Reference prices over the broker: ``sealbot ingest`` publishes throttled tickers, a
worker in ``ingest`` mode binds the ticker keys of the pairs its bots trade and feeds
its guard from them; its accounts never ask the exchange for a ticker, and an account
stays reconciling until the first ticker of its pairs came."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import cast

import pytest
from aio_pika.abc import AbstractExchange

from sealbot.config import Settings
from sealbot.domain import InvalidConfig, Pair
from sealbot.domain.candles import Candle
from sealbot.domain.market import MarketRules
from sealbot.engine.guard import MarketSnapshot
from sealbot.engine.journal import AccountRecord
from sealbot.engine.runner import RunnerSettings
from sealbot.engine.scaleout.broker import Topology
from sealbot.engine.scaleout.ingest import Ingestor, parse_ticker, ticker_body, ticker_key, venue_word
from sealbot.engine.scaleout.partitions import default_partition
from sealbot.engine.scaleout.worker import Worker, WorkerOptions
from sealbot.services import inbox
from sealbot.services.scaleout import run_ingest
from sealbot.store import make_session_factory
from sealbot.venues.base import Ticker, Venue
from sealbot.venues.ccxt_venue import CcxtVenue
from sealbot.venues.paper import PaperVenue

from .conftest import BROKER_URL
from .platform_env import seed_paper_signal_bot, until

BTC, ETH = Pair.parse("BTC/USDT"), Pair.parse("ETH/USDT")
DATA_URL = "http://127.0.0.1:9"  # the endpoint the ingestor stands for; never contacted here
VENUE = f"binance@{DATA_URL}"  # its venue identity (engine.market.venue_key)


class _Exchange:
    """The ingestor's data venue: a book around 100 (BTC) and 10 (ETH), 24 hourly candles."""

    def __init__(self) -> None:
        self.tickers = 0

    async def fetch_ticker(self, pair: Pair) -> Ticker:
        self.tickers += 1
        mid = Decimal(100) if pair == BTC else Decimal(10)
        return Ticker(pair, mid - Decimal("0.5"), mid + Decimal("0.5"), mid, datetime.now(UTC))

    async def fetch_candles(self, pair: Pair, timeframe: str, since: datetime | None = None,
                            limit: int | None = None) -> list[Candle]:
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=24)
        return [Candle(pair, "1h", start + timedelta(hours=i), Decimal(100), Decimal(100), Decimal(100),
                       Decimal(100), Decimal(50)) for i in range(24)]


class _CountingPaper(PaperVenue):
    """A worker's account venue that counts the tickers it is asked for."""

    asked = 0

    async def fetch_ticker(self, pair: Pair) -> Ticker:
        type(self).asked += 1
        return await super().fetch_ticker(pair)


def test_a_ticker_survives_the_wire_as_decimal() -> None:
    snapshot = MarketSnapshot(BTC, Decimal("0.1"), Decimal("0.3"), None, Decimal("12.5"))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_ticker(ticker_body(VENUE, snapshot, at)) == (VENUE, snapshot, at)


async def test_tickers_are_throttled_per_pair() -> None:
    data = _Exchange()
    ingestor = Ingestor(cast(Venue, data), "binance", [BTC, ETH], BROKER_URL, Topology("unused", 1),
                        ticker_interval=0.3, identity=VENUE)
    sent: list[str] = []

    class _Sink:
        async def publish(self, message: object, routing_key: str) -> None:
            sent.append(routing_key)

    ingestor._exchange = cast(AbstractExchange, _Sink())  # the broker's side is not under test here
    assert await ingestor.publish_tickers() == 2
    assert await ingestor.publish_tickers() == 0  # within the interval: nothing
    await asyncio.sleep(0.35)
    assert await ingestor.publish_tickers() == 2
    assert sent == [ticker_key(VENUE, BTC), ticker_key(VENUE, ETH)] * 2 and data.tickers == 4
    assert sent[0] == f"{venue_word(VENUE)}.BTCUSDT.ticker" and sent[0].count(".") == 2
    with pytest.raises(ValueError, match="ticker_interval"):
        Ingestor(cast(Venue, data), "binance", [BTC], BROKER_URL, Topology("unused", 1), ticker_interval=0)


async def test_an_ingested_ticker_reaches_the_workers_guard(pg_url: str, topology: Topology) -> None:
    factory = make_session_factory(pg_url)
    account_id = seed_paper_signal_bot(factory, "tick@example.test")

    async def venue_for(_account: AccountRecord) -> Venue:
        # prices from the ingested endpoint (its data venue's ticker): they share its identity
        return _CountingPaper({BTC: MarketRules(BTC, Decimal("0.01"), Decimal("0.00001"))},
                              {"USDT": Decimal(1000)}, data_venue=CcxtVenue("binance", urls={"api_base": DATA_URL}))

    _CountingPaper.asked = 0
    worker = Worker(factory, venue_for, inbox.decode,
                    WorkerOptions(BROKER_URL, topology, worker_id="tick", market_data="ingest",
                                  runner=RunnerSettings(poll_interval=0.2)))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    data = _Exchange()
    ingestor = Ingestor(cast(Venue, data), "binance", [BTC, ETH], BROKER_URL, topology, identity=VENUE)
    connection = await ingestor.connect()
    try:
        assert await until(lambda: default_partition(account_id, topology.partitions) in worker.owned, 20)
        assert await until(lambda: account_id in worker.runner.accounts, 10)
        acc = worker.runner.accounts[account_id]
        assert acc.needs_reconcile and not acc.ready.is_set()  # no reference price yet: the bot waits
        assert acc.market.snapshot(BTC).reference_price is None
        assert await until(lambda: worker.market is not None and worker.market.feeds == {(VENUE, BTC)}, 10)
        await asyncio.sleep(0.3)  # the binds are on their way to the broker
        assert await ingestor.publish_tickers() == 2
        assert await until(lambda: acc.market.snapshot(BTC).reference_price == Decimal(100), 10)
        snapshot = acc.market.snapshot(BTC)
        assert (snapshot.bid, snapshot.ask, snapshot.quote_volume_24h) == (Decimal("99.5"), Decimal("100.5"),
                                                                          Decimal(24 * 100 * 50))
        assert await until(acc.ready.is_set, 10)  # the poller's reconcile found the price
        assert await ingestor.publish_tickers() == 0  # throttled: at most one per pair per interval
        await asyncio.sleep(0.3)
        assert worker.market is not None and worker.market.tickers == 1  # BTC/USDT only; ETH/USDT never bound
        assert _CountingPaper.asked == 0  # the worker's accounts asked the exchange for no ticker at all
        assert worker.runner.prices.fetches == 0
    finally:
        await connection.close()
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)
        factory.kw["bind"].dispose()


@pytest.mark.parametrize("seconds", [0.5, 3601.0, -1.0])
def test_sealbot_ingest_names_a_ticker_interval_that_cannot_work(seconds: float, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, broker_url=BROKER_URL)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfig) as refused:
        run_ingest(settings, "binance", ["BTC/USDT"], ticker_interval=seconds)
    assert refused.value.field == "ticker_interval"


def test_sealbot_ingest_names_an_api_base_that_cannot_work(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, broker_url=BROKER_URL)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfig) as refused:
        run_ingest(settings, "binance", ["BTC/USDT"], api_base="ftp://testnet.example")
    assert refused.value.field == "api_base"
