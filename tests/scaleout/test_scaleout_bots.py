"""A worker runs a real bot: taking the partition starts (and reconciles) the account,
and a signal from the broker steps the bot, whose new state and order intent commit in
the same fenced transaction as the message's ledger row."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa

from sealbot.domain import Pair, SignalAction, SignalReceived
from sealbot.domain.market import MarketRules
from sealbot.engine.guard import GuardPolicy, MarketSnapshot
from sealbot.engine.journal import AccountRecord
from sealbot.engine.runner import RunnerSettings
from sealbot.engine.scaleout.broker import Publisher, Signal, Topology
from sealbot.engine.scaleout.partitions import default_partition
from sealbot.engine.scaleout.worker import Worker, WorkerOptions
from sealbot.services import inbox
from sealbot.store import make_session_factory
from sealbot.store.models import Bot, EngineMessage, EnginePartition, ExchangeAccount, OrderRow, User
from sealbot.venues.base import Venue
from sealbot.venues.paper import PaperVenue

from .conftest import BROKER_URL
from .platform_env import until

BTC = Pair.parse("BTC/USDT")


async def test_a_signal_steps_the_bot_in_the_fenced_transaction(pg_url: str, topology: Topology) -> None:
    factory = make_session_factory(pg_url)
    with factory.begin() as session:
        user = User(email="bots@example.test", password_hash="x")
        session.add(user)
        session.flush()
        account = ExchangeAccount(owner_id=user.id, exchange="binance", label="paper", is_paper=True)
        session.add(account)
        session.flush()
        bot = Bot(owner_id=user.id, account_id=account.id, kind="signal", name="sig", status="running",
                  config={"markets": [{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001",
                                       "min_notional": "5"}], "amount": "50"})
        session.add(bot)
        session.flush()
        account_id, bot_id = str(account.id), str(bot.id)

    async def price(_pair: Pair) -> Decimal:
        return Decimal("50000")

    async def venue_for(_account: AccountRecord) -> Venue:
        return PaperVenue({BTC: MarketRules(BTC, Decimal("0.01"), Decimal("0.00001"), min_notional=Decimal(5))},
                          {"USDT": Decimal(10_000)}, price_source=price)

    worker = Worker(factory, venue_for, inbox.decode,
                    WorkerOptions(BROKER_URL, topology, worker_id="inproc", runner=RunnerSettings(poll_feeds=False)),
                    guard=GuardPolicy())
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        partition = default_partition(account_id, topology.partitions)
        assert await until(lambda: partition in worker.owned, 20)
        # a claim records the partition as owned first, then starts its accounts (reconciling each)
        assert await until(lambda: account_id in worker.runner.accounts and worker.stats.reconciled == 1, 20)
        # the paper venue has no candles for the guard's 24 h volume: give the guard its reference
        worker.runner.accounts[account_id].market.set(MarketSnapshot(BTC, last=Decimal("50000"),
                                                                     quote_volume_24h=Decimal(10**12)))
        signal = SignalReceived("tv-1", SignalAction.ENTER_LONG, datetime.now(UTC), pair=BTC,
                                trigger_price=Decimal("50000"))
        kind, payload = inbox.encode(signal)
        publisher = Publisher(BROKER_URL, topology)
        await publisher.open(declare_topology=False)
        await publisher.publish(partition, Signal("inbox-1", account_id, bot_id, kind, payload, None,
                                                  datetime.now(UTC)))
        await publisher.close()

        def ledger() -> list[EngineMessage]:
            with factory() as session:
                return list(session.scalars(sa.select(EngineMessage)))

        assert await until(lambda: len(ledger()) == 1, 20)
        with factory() as session:
            [row] = ledger()
            epoch = session.get(EnginePartition, partition)
            assert epoch is not None and row.epoch == epoch.epoch and row.worker == "inproc"
            orders = list(session.scalars(sa.select(OrderRow).where(OrderRow.bot_id == int(bot_id))))
            stored = session.get(Bot, int(bot_id))
        assert orders, f"the signal produced no order intent; state {stored.state if stored else None}"
        assert all(o.client_order_id.startswith(f"sb{bot_id}-") for o in orders)
        assert stored is not None and stored.state is not None
        assert stored.state["seen"] == ["tv-1"] and stored.state["next_deal"] == 2, stored.state
        assert [(o.status, o.last_error) for o in orders] == [("filled", None)]
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)
        factory.kw["bind"].dispose()
