"""The guard's daily notional totals live in the journal, not in a process: a restart,
a second runner (another process, another scale-out worker) and the next UTC day see
what the orders journalled say. Every backend the suite runs on, and the memory journal."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from sealbot.domain import ClientOrderId, Order, OrderStatus, OrderType, Pair, Side
from sealbot.domain.evolve import evolve
from sealbot.engine.clock import FakeClock
from sealbot.engine.guard import GuardLimits, GuardPolicy, MarketSnapshot, SpentToday
from sealbot.engine.journal import AccountRecord, BotRecord, Journal, JournalOrder, MemoryJournal
from sealbot.engine.runner import InProcessRunner, RunnerSettings
from sealbot.engine.store_journal import StoreJournal
from sealbot.store import UnitOfWork, make_session_factory, upgrade
from sealbot.store.models import Bot, OrderRow
from sealbot.venues.base import Venue

from .fakes import T0, FakeVenue
from .test_engine_runner import candle, dca_config

BTC = Pair("BTC", "USDT")
NOW = T0 + timedelta(minutes=1)
DAY = NOW.date()
# every bot's base order is 100 USDT: two fit under the daily limit, a third does not
GUARD = GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0), max_daily_notional=Decimal(250)))
SETTINGS = RunnerSettings(poll_feeds=False, background=False)


class Db:
    """One user (alice) with two accounts on a fresh database; bots added as needed."""

    def __init__(self, url: str) -> None:
        upgrade(url)
        self.url = url
        self.factory = make_session_factory(url)
        with UnitOfWork(self.factory) as uow:
            self.user = uow.users.add("alice@example.org", "x").id
            self.accounts = [str(uow.accounts.add(self.user, "fake", label).id) for label in ("one", "two")]

    def add_bot(self, account: str, volume: str = "100") -> str:
        with UnitOfWork(self.factory) as uow:
            bot = uow.bots.add(self.user, "dca", f"bot on {account}",
                               dca_config("0", base_order_type="limit", base_order_volume=volume),
                               account_id=int(account))
            uow.bots.set_status(self.user, bot.id, "running")
            return str(bot.id)

    def process(self) -> StoreJournal:
        """The journal of a new process: its own engine, its own connections."""
        return StoreJournal(make_session_factory(self.url))

    def statuses(self) -> dict[str, str]:
        with self.factory() as session:
            return {str(b.id): b.status for b in session.scalars(sa.select(Bot))}

    def orders(self) -> list[tuple[str, Decimal | None]]:
        with self.factory() as session:
            return [(r.status, r.guard_notional) for r in session.scalars(sa.select(OrderRow).order_by(OrderRow.id))]


async def trade_one_candle(journal: Journal, account: str, clock: FakeClock, venue: FakeVenue,
                           minute: int = 0) -> InProcessRunner:
    """Start a runner on the account and have its bots see one candle at 100 USDT."""
    async def factory(_a: AccountRecord) -> Venue:
        return venue

    runner = InProcessRunner(journal, factory, guard=GUARD, clock=clock, settings=SETTINGS)
    await runner.start_account(account)
    acc = runner.accounts[account]
    acc.market.set(MarketSnapshot(BTC, last=Decimal(100), quote_volume_24h=Decimal(10**9)))
    runner.hub.publish("fake", candle(minute, "100"))
    await acc.drain()
    await acc.poll_once()
    await acc.drain()
    return runner


async def test_a_restart_keeps_the_days_total_so_the_next_order_over_the_limit_is_refused(
        database_url: str) -> None:
    db = Db(database_url)
    clock = FakeClock(NOW.timestamp())
    venue = FakeVenue(now=clock.now)
    first, second = db.add_bot(db.accounts[0]), db.add_bot(db.accounts[0])
    runner = await trade_one_candle(db.process(), db.accounts[0], clock, venue)
    await runner.stop()  # the process goes away (a crash loop, a deploy): only the database remains
    assert len(venue.created) == 2
    third = db.add_bot(db.accounts[0])
    runner = await trade_one_candle(db.process(), db.accounts[0], clock, venue, minute=1)
    await runner.stop()
    assert len(venue.created) == 2  # 200 + 100 > 250: refused
    assert db.statuses() == {first: "running", second: "running", third: "paused"}
    assert db.orders() == [("open", Decimal(100)), ("open", Decimal(100)), ("rejected", None)]


async def test_two_runners_on_two_accounts_of_one_user_share_the_users_daily_total(database_url: str) -> None:
    db = Db(database_url)
    clock = FakeClock(NOW.timestamp())
    venues = FakeVenue(now=clock.now), FakeVenue(now=clock.now)
    db.add_bot(db.accounts[0])
    db.add_bot(db.accounts[0])
    other = db.add_bot(db.accounts[1])
    one = await trade_one_candle(db.process(), db.accounts[0], clock, venues[0])
    two = await trade_one_candle(db.process(), db.accounts[1], clock, venues[1])  # both run at once
    await one.stop()
    await two.stop()
    assert len(venues[0].created) == 2 and venues[1].created == []
    assert db.statuses()[other] == "paused"


async def test_orders_refused_by_the_guard_or_rejected_by_the_exchange_do_not_count(database_url: str) -> None:
    db = Db(database_url)
    clock = FakeClock(NOW.timestamp())
    venue = FakeVenue(now=clock.now)
    big = db.add_bot(db.accounts[0], volume="300")  # over the daily limit on its own: refused
    unlucky = db.add_bot(db.accounts[0])
    venue.faults = ["funds"]  # the exchange rejects the first order that reaches it (unlucky's)
    runner = await trade_one_candle(db.process(), db.accounts[0], clock, venue)
    await runner.stop()
    assert db.orders() == [("rejected", None), ("rejected", Decimal(100))]
    assert db.statuses()[big] == "paused" and unlucky
    db.add_bot(db.accounts[0])
    db.add_bot(db.accounts[0])
    runner = await trade_one_candle(db.process(), db.accounts[0], clock, venue, minute=1)
    await runner.stop()
    assert len(venue.created) == 2  # 100 + 100 <= 250: neither the 300 nor the rejected 100 counted
    assert [s for s, _ in db.orders()][2:] == ["open", "open"]


async def test_the_next_utc_day_starts_from_zero(database_url: str) -> None:
    db = Db(database_url)
    clock = FakeClock(NOW.timestamp())
    venue = FakeVenue(now=clock.now)
    db.add_bot(db.accounts[0])
    db.add_bot(db.accounts[0])
    runner = await trade_one_candle(db.process(), db.accounts[0], clock, venue)
    await runner.stop()
    db.add_bot(db.accounts[0])
    clock.advance(24 * 3600 - 120)  # 23:59 UTC, the same day: nothing more fits
    runner = await trade_one_candle(db.process(), db.accounts[0], clock, venue, minute=1)
    await runner.stop()
    assert len(venue.created) == 2
    clock.advance(120)  # 00:01 UTC the next day
    fresh = db.add_bot(db.accounts[0])
    db.add_bot(db.accounts[0])
    runner = await trade_one_candle(db.process(), db.accounts[0], clock, venue, minute=24 * 60 + 1)
    await runner.stop()
    assert len(venue.created) == 4  # a new day: 100 + 100 again
    assert db.statuses()[fresh] == "running"


# -- the journals' contract ------------------------------------------------------------------
def _order(n: int, account: str, bot: str, at_minute: int = 1, notional: str | None = "100",
           status: OrderStatus = OrderStatus.PENDING) -> JournalOrder:
    order = Order(ClientOrderId(bot or "m", n, "b"), BTC, Side.BUY, OrderType.LIMIT, Decimal(1), Decimal(100),
                  status=status)
    return JournalOrder(account, bot, order, T0 + timedelta(minutes=at_minute),
                        notional=None if notional is None else Decimal(notional))


def _journals(database_url: str) -> tuple[Journal, str, str, str, str]:
    """(journal, alice, her first account, her second, bob's account)."""
    if database_url == "memory":
        journal = MemoryJournal()
        for account in (AccountRecord("1", "alice", "fake"), AccountRecord("2", "alice", "fake"),
                        AccountRecord("3", "bob", "fake")):
            journal.add_account(account)
        return journal, "alice", "1", "2", "3"
    db = Db(database_url)
    with UnitOfWork(db.factory) as uow:
        bob = uow.users.add("bob@example.org", "x").id
        bobs = str(uow.accounts.add(bob, "fake", "bob").id)
    return db.process(), str(db.user), db.accounts[0], db.accounts[1], bobs


def test_the_days_totals_count_committed_orders_of_the_day_and_owner_but_not_rejected_ones(
        database_url: str) -> None:
    _counts_committed_orders_of_the_day_and_owner(database_url)


def test_the_memory_journals_totals_count_the_same_orders() -> None:
    _counts_committed_orders_of_the_day_and_owner("memory")


def test_a_rolled_back_transaction_leaves_the_totals_as_they_were(database_url: str) -> None:
    _rollback_leaves_the_totals(database_url)


def test_a_rolled_back_memory_transaction_leaves_the_totals_as_they_were() -> None:
    _rollback_leaves_the_totals("memory")


def _counts_committed_orders_of_the_day_and_owner(journal_url: str) -> None:
    journal, alice, one, two, bobs = _journals(journal_url)
    with journal.transaction() as tx:
        tx.add_order(_order(1, one, "", notional="100"))
        tx.add_order(_order(2, two, "", notional="40.5"))
        tx.add_order(_order(3, one, "", notional=None))  # a closing order: does not count
        tx.add_order(_order(4, one, "", notional="7", status=OrderStatus.REJECTED))  # refused: does not count
        tx.add_order(_order(5, one, "", at_minute=-1, notional="1000"))  # yesterday (UTC)
        tx.add_order(_order(6, bobs, "", notional="9999"))  # bob's
        assert tx.spent_today(alice, one, DAY) == SpentToday(Decimal("140.5"), Decimal(100))
    with journal.transaction() as tx:
        entry = tx.get_order(ClientOrderId("m", 1, "b"))
        assert entry is not None and entry.notional == Decimal(100)
        # canceled, and written back without its notional (which it keeps): still counts
        tx.put_order(JournalOrder(entry.account, entry.bot, evolve(entry.order, status=OrderStatus.CANCELED),
                                  entry.created_at))
        assert tx.spent_today(alice, one, DAY).user == Decimal("140.5")
        second = tx.get_order(ClientOrderId("m", 2, "b"))
        assert second is not None
        tx.put_order(evolve(second, order=evolve(second.order, status=OrderStatus.REJECTED)))  # by the exchange
        assert tx.spent_today(alice, two, DAY) == SpentToday(Decimal(100), Decimal(0))
    with journal.transaction() as tx:
        assert tx.spent_today(alice, one, DAY) == SpentToday(Decimal(100), Decimal(100))
        bob = next(a.user for a in journal.accounts() if a.id == bobs)
        assert tx.spent_today(bob, bobs, DAY) == SpentToday(Decimal(9999), Decimal(9999))
        assert tx.spent_today(alice, one, date(2026, 1, 2)) == SpentToday()


def _rollback_leaves_the_totals(journal_url: str) -> None:
    journal, alice, one, _two, _bobs = _journals(journal_url)
    with journal.transaction() as tx:
        tx.add_order(_order(1, one, "", notional="100"))
    with pytest.raises(RuntimeError), journal.transaction() as tx:
        tx.add_order(_order(2, one, "", notional="50"))
        assert tx.spent_today(alice, one, DAY).user == Decimal(150)  # its own write is seen
        raise RuntimeError("the step failed")
    with journal.transaction() as tx:
        assert tx.spent_today(alice, one, DAY) == SpentToday(Decimal(100), Decimal(100))


def test_a_second_process_judging_the_same_user_waits_for_the_first_to_commit(database_url: str) -> None:
    """Two workers judging orders of one user's two accounts at once: without a lock both
    would read the same total and both orders could pass; the second waits and sees the first."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time; the lock is PostgreSQL's")
    db = Db(database_url)
    first, second = db.process(), db.process()
    seen: list[SpentToday] = []
    with first.transaction() as tx:
        assert tx.spent_today(str(db.user), db.accounts[0], DAY) == SpentToday()
        tx.add_order(_order(1, db.accounts[0], "", notional="100"))

        def other() -> None:
            with second.transaction() as tx2:
                seen.append(tx2.spent_today(str(db.user), db.accounts[1], DAY))

        thread = threading.Thread(target=other)
        thread.start()
        time.sleep(0.5)
        assert seen == []  # still waiting for the first transaction
    thread.join(10)
    assert seen == [SpentToday(Decimal(100), Decimal(0))]


def test_the_memory_journal_keeps_running_totals_instead_of_scanning_the_orders() -> None:
    journal = MemoryJournal()
    journal.add_account(AccountRecord("1", "alice", "fake"))
    with journal.transaction() as tx:
        for n in range(20_000):
            tx.add_order(_order(n, "1", "", notional="1"))
    began = time.perf_counter()
    with journal.transaction() as tx:
        for _ in range(20_000):
            tx.spent_today("alice", "1", DAY)
    assert time.perf_counter() - began < 2.0  # a scan per call would be 4e8 order visits
    with journal.transaction() as tx:
        assert tx.spent_today("alice", "1", DAY) == SpentToday(Decimal(20_000), Decimal(20_000))
    # bots known to the journal stand in for an account it was never told of
    with journal.transaction() as tx:
        tx.save_bot(BotRecord("9", "carol", "5", "dca", {}, None))
        tx.add_order(_order(1, "5", "9", notional="3"))
        assert tx.spent_today("carol", "5", DAY) == SpentToday(Decimal(3), Decimal(3))
