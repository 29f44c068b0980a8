"""Market data through the broker: an ingestor publishes closed candles on the topic
exchange, and a worker in ``ingest`` mode binds only the streams its bots need and feeds
them to its bots' FeedHub."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import cast

from sealbot.domain import Pair
from sealbot.domain.candles import Candle
from sealbot.domain.market import MarketRules
from sealbot.engine.journal import AccountRecord
from sealbot.engine.runner import RunnerSettings
from sealbot.engine.scaleout.broker import Topology
from sealbot.engine.scaleout.ingest import Ingestor, candle_body, parse_candle
from sealbot.engine.scaleout.partitions import default_partition
from sealbot.engine.scaleout.worker import Worker, WorkerOptions
from sealbot.services import inbox
from sealbot.store import make_session_factory
from sealbot.venues.base import Venue
from sealbot.venues.ccxt_venue import CcxtVenue
from sealbot.venues.paper import PaperVenue

from .conftest import BROKER_URL
from .platform_env import seed_paper_signal_bot, until

BTC, ETH = Pair.parse("BTC/USDT"), Pair.parse("ETH/USDT")
DATA_URL = "http://127.0.0.1:9"  # the endpoint the ingestor stands for; never contacted here
VENUE = f"binance@{DATA_URL}"  # its venue identity (engine.market.venue_key)


class _Candles:
    """A data venue with three closed 1m candles per pair."""

    def __init__(self) -> None:
        start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=4)
        self.start = start

    async def fetch_candles(self, pair: Pair, timeframe: str, since: datetime | None = None,
                            limit: int | None = None) -> list[Candle]:
        return [Candle(pair, timeframe, self.start + timedelta(minutes=i), Decimal(100 + i), Decimal(101 + i),
                       Decimal(99 + i), Decimal("100.5") + i, Decimal(7)) for i in range(3)
                if since is None or self.start + timedelta(minutes=i) > since]


def test_a_candle_survives_the_wire_as_decimal() -> None:
    candle = Candle(BTC, "1m", datetime(2026, 1, 1, tzinfo=UTC), Decimal("0.1"), Decimal("0.3"), Decimal("0.05"),
                    Decimal("0.2"), Decimal("12.5"))
    assert parse_candle(candle_body(VENUE, candle)) == (VENUE, candle)


async def test_a_worker_gets_the_candles_its_bots_need(pg_url: str, topology: Topology) -> None:
    factory = make_session_factory(pg_url)
    account_id = seed_paper_signal_bot(factory, "md@example.test")

    async def price(_pair: Pair) -> Decimal:
        return Decimal("100")

    async def venue_for(_account: AccountRecord) -> Venue:
        # candles from the ingested endpoint's data (prices: a function of its own)
        return PaperVenue({BTC: MarketRules(BTC, Decimal("0.01"), Decimal("0.00001"))}, {"USDT": Decimal(1000)},
                          price_source=price, data_venue=CcxtVenue("binance", urls={"api_base": DATA_URL}))

    worker = Worker(factory, venue_for, inbox.decode,
                    WorkerOptions(BROKER_URL, topology, worker_id="md", market_data="ingest",
                                  runner=RunnerSettings()))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    data = _Candles()
    ingestor = Ingestor(cast(Venue, data), "binance", [BTC, ETH], BROKER_URL, topology, identity=VENUE)
    connection = await ingestor.connect()
    try:
        assert await until(lambda: default_partition(account_id, topology.partitions) in worker.owned, 20)
        assert await until(lambda: worker.market is not None and worker.market.feeds == {(VENUE, BTC)}, 10)
        await asyncio.sleep(0.3)  # the bind is on its way to the broker
        assert await ingestor.poll_once() == 6  # three closed candles of each pair
        # the hub took the three BTC/USDT candles in (a signal bot sleeps through them: the
        # hub wakes only the bots a candle can change, so deliveries are not the measure here)
        last = data.start + timedelta(minutes=2)
        assert await until(lambda: worker.runner.hub.last_open(VENUE, BTC) == last, 10), worker.stats
        assert await ingestor.poll_once() == 0  # nothing new: nothing published twice
        await asyncio.sleep(0.5)
        assert worker.market is not None and worker.market.received == 3  # BTC/USDT once; ETH/USDT never bound
        assert worker.runner.hub.last_open(VENUE, ETH) is None
    finally:
        await connection.close()
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)
        factory.kw["bind"].dispose()
