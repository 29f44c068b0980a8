"""A scale-out worker hears its accounts' fills from the exchange's user-data stream, as
the embedded engine does: a worker built as ``sealbot worker`` builds it (upkeep included),
on a real simex linked through the service layer (the key sealed by custody, the stream's
subscription signed by the signer), over RabbitMQ and PostgreSQL. The poll interval is
30 s, so only the stream can explain a fill that reaches its bot within two seconds.

And no watcher outlives its partition: releasing the partition, or a worker stepping
down because another one claimed the partition's epoch, closes the account's websocket
on simex (simex's ws-api module counts the live subscriptions per account)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sealbot.domain import Candle, CandleClosed, Event, OrderFilled, Pair
from sealbot.domain.evolve import evolve
from sealbot.engine.runner import AccountRunner
from sealbot.engine.scaleout.broker import Topology
from sealbot.engine.scaleout.partitions import PartitionStore, default_partition
from sealbot.engine.scaleout.worker import Worker, WorkerOptions
from sealbot.services import inbox
from sealbot.services.bots import create_bot
from sealbot.services.platform import Platform
from sealbot.services.serving import long_lived_runner
from sealbot.services.worker_upkeep import WorkerUpkeep
from sealbot.simex import SimexServer
from sealbot.simex.ws_api_binance import BinanceWsApi

from .conftest import BROKER_URL
from .platform_env import DCA, Linked, engine_options, linked_account, make_platform, until

PAIR = Pair("BTC", "USDT")
LIMIT_DCA = {**DCA, "base_order_type": "limit"}


class SimexClock:
    """The engine's clock on simex's simulated time (simex at speed 0: the test moves it)."""

    def __init__(self, sx: SimexServer) -> None:
        self.sx = sx
        self.ms = int(sx.admin.clock()["now_ms"])

    def advance(self, seconds: int) -> None:
        self.ms = int(self.sx.admin.set_clock(advance_seconds=seconds)["now_ms"])

    def monotonic(self) -> float:
        return time.monotonic()  # the worker's upkeep schedules in real seconds

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ms / 1000, UTC)

    def wall(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as sx:
        yield sx


def ws_api(sx: SimexServer) -> BinanceWsApi:
    assert sx.ws_api is not None
    return sx.ws_api


def subscriptions_of(sx: SimexServer, sim_account: int) -> int:
    """Live user-data subscriptions of one simex account, over every open connection."""
    api = ws_api(sx)
    with api._guard:
        return sum(1 for conn in api._conns for account in conn.subs.values() if account == sim_account)


@dataclass
class Rig:
    sx: SimexServer
    platform: Platform
    linked: Linked
    bot: str
    clock: SimexClock
    worker: Worker
    traded: list[float]
    filled: list[float]

    @property
    def account(self) -> str:
        return str(self.linked.account)

    @property
    def partition(self) -> int:
        return default_partition(self.account, self.worker.topology.partitions)

    def runner(self) -> AccountRunner | None:
        return self.worker.runner.accounts.get(self.account)

    async def started(self) -> AccountRunner:
        assert await until(lambda: self.runner() is not None and self.runner().ready.is_set(), 30), \
            "the worker never started the account"
        acc = self.runner()
        assert acc is not None

        def on_commands(_bot: str, event: Event, _commands: int) -> None:
            if isinstance(event, OrderFilled):
                self.filled.append(time.monotonic())

        acc.on_commands = on_commands
        return acc

    async def fill_the_base_order(self, acc: AccountRunner, within: float) -> float:
        """The bot places a resting limit buy; the replayed market trades through it on
        simex; the seconds from simex's trade to the bot's step on the fill."""
        ex = self.sx.exchange
        assert ex is not None
        price = ex.price("BTCUSDT")
        candle = Candle(PAIR, "1m", self.clock.now() - timedelta(minutes=1), price, price, price, price, Decimal(1))
        acc._enqueue(self.bot, CandleClosed(candle))
        assert await until(lambda: ex.open_orders(self.linked.sim_account), 10), "no base order on simex"
        for _minute in range(600):  # the replayed market trades below the limit within minutes
            self.clock.advance(60)
            if self.traded:
                break
        assert self.traded, "the market never reached the base order"
        assert await until(lambda: self.filled, within, step=0.005), f"the fill did not reach the bot in {within} s"
        return self.filled[0] - self.traded[0]


@contextlib.asynccontextmanager
async def rig(tmp_path: Path, pg_url: str, topology: Topology, sx: SimexServer,
              **test_settings: Any) -> AsyncIterator[Rig]:
    """A worker on the runner settings ``sealbot worker`` gets (``long_lived_runner``, as
    ``services.scaleout.build_worker`` passes them), changed only as the test needs: a
    30 s poll interval, no candle polling (the test hands the bot its candle), no
    process-wide garbage-collector tuning."""
    platform = make_platform(tmp_path, pg_url, sx)
    settings = evolve(long_lived_runner(platform.settings), **{
        "poll_interval": 30.0, "poll_feeds": False, "market_ttl": 0, "user_stream_retry_max": 1.0, "quiet_gc": False,
        **test_settings})
    linked = await linked_account(platform, sx, "alice")
    bot = create_bot(platform, linked.user, linked.account, "dca", "limit entry", LIMIT_DCA, start=True)
    clock = SimexClock(sx)
    traded: list[float] = []
    assert sx.exchange is not None
    sx.exchange.order_listeners.append(
        lambda order, execution, trade: traded.append(time.monotonic()) if execution == "TRADE" else None)
    engine = engine_options()
    # as services.scaleout.worker_for builds it, with the engine's clock on simex's time;
    # rejoin_after: a released partition is not taken back while the test looks
    options = WorkerOptions(BROKER_URL, topology, worker_id="streamed", rejoin_after=60.0, runner=settings)
    upkeep = WorkerUpkeep(platform, topology.partitions, options=engine, sync_interval=0.2)
    worker = Worker(platform.session_factory, platform.venue_for, inbox.decode, options, guard=engine.guard,
                    upkeep=upkeep, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield Rig(sx, platform, linked, str(bot.id), clock, worker, traded, [])
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 20)
        platform.session_factory.kw["bind"].dispose()


async def test_a_worker_brings_a_fill_to_its_bot_at_the_speed_of_the_stream(
        tmp_path: Path, pg_url: str, topology: Topology, simex: SimexServer) -> None:
    async with rig(tmp_path, pg_url, topology, simex) as r:
        acc = await r.started()
        watcher = acc.user_stream
        assert watcher is not None, "the worker's account has no user-data stream"
        assert await until(lambda: watcher.subscribed, 5)
        assert subscriptions_of(simex, r.linked.sim_account) == 1
        assert r.worker.snapshot()["user_streams"] == {"accounts": 1, "subscribed": 1, "events": 0}
        latency = await r.fill_the_base_order(acc, within=2.0)
        assert watcher.events >= 2  # the order's NEW and its TRADE, at least
        assert r.worker.snapshot()["user_streams"]["events"] == watcher.events
        # the fill was applied by the poll, under the partition's fence: the bot went on
        ex = simex.exchange
        assert ex is not None
        assert await until(lambda: len(ex.open_orders(r.linked.sim_account)) >= 2, 5), \
            "the bot placed no order after its base order filled"
    print(f"fill-to-bot latency on a scale-out worker with the user-data stream (poll interval 30 s): "
          f"{latency * 1000:.0f} ms")
    assert latency < 2.0
    assert subscriptions_of(simex, r.linked.sim_account) == 0 and ws_api(simex).connections == 0


async def test_without_the_stream_a_worker_waits_for_the_interval_poll(
        tmp_path: Path, pg_url: str, topology: Topology, simex: SimexServer) -> None:
    async with rig(tmp_path, pg_url, topology, simex, poll_interval=2.0, user_stream=False) as r:
        acc = await r.started()
        assert acc.user_stream is None
        latency = await r.fill_the_base_order(acc, within=2.0 + 2.0)
        assert ws_api(simex).connections == 0
    print(f"fill-to-bot latency on a scale-out worker without the stream (poll interval 2 s): "
          f"{latency * 1000:.0f} ms")


async def test_releasing_the_partition_closes_the_accounts_stream(
        tmp_path: Path, pg_url: str, topology: Topology, simex: SimexServer) -> None:
    async with rig(tmp_path, pg_url, topology, simex) as r:
        acc = await r.started()
        watcher = acc.user_stream
        assert watcher is not None and await until(lambda: watcher.subscribed, 5)
        await r.worker.transport.leave(r.partition, release=True)
        assert r.partition not in r.worker.owned and r.runner() is None
        assert not watcher.subscribed
        assert await until(lambda: subscriptions_of(simex, r.linked.sim_account) == 0, 2), \
            "the released account's stream is still subscribed on simex"
        assert await until(lambda: ws_api(simex).connections == 0, 2)
        assert r.worker.snapshot()["user_streams"] == {"accounts": 0, "subscribed": 0, "events": 0}


async def test_a_worker_that_lost_the_partitions_epoch_steps_down_with_its_stream(
        tmp_path: Path, pg_url: str, topology: Topology, simex: SimexServer) -> None:
    async with rig(tmp_path, pg_url, topology, simex) as r:
        acc = await r.started()
        watcher = acc.user_stream
        assert watcher is not None and await until(lambda: watcher.subscribed, 5)
        store = PartitionStore(r.platform.session_factory, topology.partitions)
        await asyncio.to_thread(store.claim, r.partition, "usurper")  # another worker took it over
        assert await until(lambda: r.worker.stats.fenced >= 1 and r.partition not in r.worker.owned, 5), \
            "the worker did not step down"
        assert r.runner() is None and not watcher.subscribed
        assert await until(lambda: subscriptions_of(simex, r.linked.sim_account) == 0, 2), \
            "the stepped-down worker's stream is still subscribed on simex"
        assert r.worker.snapshot()["user_streams"] == {"accounts": 0, "subscribed": 0, "events": 0}
