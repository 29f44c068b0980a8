"""A worker built as ``sealbot worker`` builds it (services.scaleout.worker_for: upkeep,
watchdog, notifier), on a platform whose accounts are linked to a real simex through the
service layer, over the test's PostgreSQL database and RabbitMQ prefix."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sealbot.config import load_settings
from sealbot.custody.secrets import ApiCredentials
from sealbot.engine.app import EngineOptions
from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.runner import RunnerSettings
from sealbot.engine.scaleout.broker import Topology
from sealbot.engine.scaleout.worker import Worker, WorkerOptions
from sealbot.services.accounts import link_account, register_user
from sealbot.services.instance import init_instance
from sealbot.services.platform import Platform, open_platform
from sealbot.services.scaleout import worker_for
from sealbot.services.worker_upkeep import WorkerUpkeep
from sealbot.simex import SimexServer
from sealbot.store.models import Bot, ExchangeAccount, User

from .conftest import BROKER_URL

MARKET = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}
DCA = {"markets": [MARKET], "base_order_volume": "20", "safety_order_volume": "20", "max_safety_orders": 2,
       "safety_order_step_percentage": "2", "take_profit": "5", "base_order_type": "market"}


def seed_paper_signal_bot(factory: Any, email: str) -> str:
    """A user with a paper Binance account running one signal bot on BTC/USDT (50 USDT a
    signal), written straight to the store; the account's id."""
    with factory.begin() as session:
        user = User(email=email, password_hash="x")
        session.add(user)
        session.flush()
        account = ExchangeAccount(owner_id=user.id, exchange="binance", label="paper", is_paper=True)
        session.add(account)
        session.flush()
        session.add(Bot(owner_id=user.id, account_id=account.id, kind="signal", name="sig", status="running",
                        config={"markets": [MARKET], "amount": "50"}))
        return str(account.id)


def wall_clock_simex() -> SimexServer:
    """simex at the wall clock's pace, as a real exchange (a worker takes no clock to
    accelerate), 61 s behind it: the replay's first one-minute candle has closed when the
    test starts, and the lag stays under the order manager's two-minute fill lookback."""
    return SimexServer(speed=1, start_ms=int(time.time() * 1000) - 61_000)


def make_platform(tmp_path: Path, pg_url: str, simex: SimexServer) -> Platform:
    settings = load_settings(data_dir=tmp_path / "data", config_dir=tmp_path / "config", database_url=pg_url,
                             notify_allow_loopback=True)
    init_instance(settings)
    return open_platform(settings, exchange_urls={"binance": {"api_base": simex.base_url}}, egress_ip="127.0.0.1")


@dataclass
class Linked:
    user: int
    account: int
    sim_account: int
    key: str
    secret: str


async def linked_account(platform: Platform, simex: SimexServer, name: str) -> Linked:
    """A user with one simex account linked through the service layer (key sealed by custody)."""
    exchange_account = simex.admin.create_account(name, {"USDT": "5000"})
    sim_id = int(exchange_account["id"])
    created = simex.admin.create_key(sim_id, ip_whitelist=["127.0.0.1"])
    user = register_user(platform, f"{name}@example.org", "correct horse battery")
    account = await link_account(platform, user, "binance", "main", ApiCredentials(created["key"], created["secret"]))
    return Linked(user, account.id, sim_id, created["key"], created["secret"])


def engine_options(watchdog_interval: float = 3600.0) -> EngineOptions:
    return EngineOptions(guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))),
                         watchdog_interval=watchdog_interval, portfolio_interval=None)


async def until(predicate: Callable[[], Any], timeout: float, step: float = 0.05) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())


def upkeep_of(worker: Worker) -> WorkerUpkeep:
    assert isinstance(worker.upkeep, WorkerUpkeep)
    return worker.upkeep


@contextlib.asynccontextmanager
async def running_worker(platform: Platform, topology: Topology, name: str, *, engine: EngineOptions | None = None,
                         sync_interval: float = 0.2, owns_all: bool = True) -> AsyncIterator[Worker]:
    """A worker serving until the block ends, once it owns every partition (``owns_all``)."""
    options = WorkerOptions(BROKER_URL, topology, worker_id=name,
                            runner=RunnerSettings(poll_interval=0.1, feed_interval=0.1, market_ttl=0))
    worker = worker_for(platform, options, engine=engine or engine_options(), sync_interval=sync_interval)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        if owns_all:
            assert await until(lambda: len(worker.owned) == topology.partitions, 30), worker.owned
        yield worker
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 20)
