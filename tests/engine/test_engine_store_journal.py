"""The runner on the real database: deals survive a restart, fills are stored once,
refusals are recorded, every backend the suite runs on."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from sealbot.domain import DealStatus, OrderType, Pair
from sealbot.engine.clock import FakeClock
from sealbot.engine.guard import GuardLimits, GuardPolicy, MarketSnapshot
from sealbot.engine.journal import AccountRecord
from sealbot.engine.runner import InProcessRunner, RunnerSettings
from sealbot.engine.store_journal import StoreJournal
from sealbot.store import UnitOfWork, make_session_factory, upgrade
from sealbot.store.models import AuditRecord, Bot, DealRow, FillRow, OrderRow
from sealbot.venues.base import Venue

from .fakes import T0, FakeVenue
from .test_engine_runner import candle, dca_config

BTC = Pair("BTC", "USDT")


def make_db(url: str) -> tuple[StoreJournal, str]:
    upgrade(url)
    factory = make_session_factory(url)
    with UnitOfWork(factory) as uow:
        user = uow.users.add("alice@example.org", "x")
        account = uow.accounts.add(user.id, "fake", "main")
        bot = uow.bots.add(user.id, "dca", "dca one", dca_config("999", base_order_type="limit"),
                           account_id=account.id)
        uow.bots.set_status(user.id, bot.id, "running")
        account_id = str(account.id)
    return StoreJournal(factory), account_id


async def run(journal: StoreJournal, venue: FakeVenue, clock: FakeClock, account_id: str,
              guard: GuardPolicy) -> InProcessRunner:
    async def factory(_a: AccountRecord) -> Venue:
        return venue

    runner = InProcessRunner(journal, factory, guard=guard, clock=clock,
                             settings=RunnerSettings(poll_feeds=False, background=False))
    await runner.start_account(account_id)
    return runner


async def test_a_deal_on_the_database_survives_a_restart_with_each_fill_stored_once(database_url: str) -> None:
    journal, account_id = make_db(database_url)
    clock = FakeClock((T0 + timedelta(minutes=1)).timestamp())
    venue = FakeVenue(now=clock.now)
    guard = GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0)))
    runner = await run(journal, venue, clock, account_id, guard)
    acc = runner.accounts[account_id]
    acc.market.set(MarketSnapshot(BTC, last=Decimal(100), quote_volume_24h=Decimal(10**9)))
    runner.hub.publish("fake", candle(0, "100"))
    await acc.drain()
    base = next(iter(venue.orders.values()))
    assert base.client_id.bot != "999"  # the config's bot_id is replaced by the row id
    venue.fill(base.client_id.text, base.amount, Decimal(100))
    await acc.poll_once()
    await acc.drain()
    await runner.stop()  # the process goes away; only the database remains
    tp = next(o for o in venue.orders.values() if o.side.value == "sell")
    assert tp.type is OrderType.LIMIT
    venue.fill(tp.client_id.text, tp.amount, tp.price or Decimal(0))
    runner = await run(journal, venue, clock, account_id, guard)
    await runner.accounts[account_id].poll_once()
    await runner.accounts[account_id].drain()
    await runner.stop()
    with journal.session_factory() as session:
        deals = session.scalars(sa.select(DealRow)).all()
        assert [d.status for d in deals] == [DealStatus.CLOSED.value]
        assert session.scalar(sa.select(sa.func.count()).select_from(FillRow)) == 2
        statuses = sorted(session.scalars(sa.select(OrderRow.status)))
        assert statuses == ["filled", "filled"]
        assert session.scalar(sa.select(Bot.state)) is not None
    assert len(venue.created) == len(set(venue.created)) == 2


async def test_a_guard_refusal_is_stored_with_its_reason_audited_and_the_bot_paused(database_url: str) -> None:
    journal, account_id = make_db(database_url)
    clock = FakeClock((T0 + timedelta(minutes=1)).timestamp())
    venue = FakeVenue(now=clock.now)
    guard = GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0)))
    runner = await run(journal, venue, clock, account_id, guard)
    acc = runner.accounts[account_id]
    acc.market.set(MarketSnapshot(BTC, last=Decimal("33"), quote_volume_24h=Decimal(10**9)))
    runner.hub.publish("fake", candle(0, "100"))
    await acc.drain()
    await runner.stop()
    assert venue.created == []
    with journal.session_factory() as session:
        order = session.scalars(sa.select(OrderRow)).one()
        assert order.status == "rejected" and order.last_error and "guard deviation" in order.last_error
        assert session.scalar(sa.select(Bot.status)) == "paused"
        actions = set(session.scalars(sa.select(AuditRecord.action)))
        assert {"order.refused", "bot.paused"} <= actions
