"""The database journal's group commit: a candle's rows read ahead in a few statements
and its orders written in one, with the guarantees of one statement per order kept
(a later read in the transaction sees them, a duplicate fails the commit, nothing is
half-written). Every backend the suite runs on."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm.exc import StaleDataError

from sealbot.domain import ClientOrderId, Deal, Direction, Order, OrderType, Pair, Side
from sealbot.domain.evolve import evolve
from sealbot.engine.journal import JournalOrder
from sealbot.engine.store_journal import StoreJournal
from sealbot.store import UnitOfWork, make_session_factory, upgrade
from sealbot.store.models import Bot, DealRow, OrderRow

from .fakes import T0
from .test_engine_runner import dca_config

BTC = Pair("BTC", "USDT")


def make_db(url: str) -> tuple[StoreJournal, str, str, str]:
    """A journal with one user, one account, one bot: (journal, user, account, bot)."""
    upgrade(url)
    factory = make_session_factory(url)
    with UnitOfWork(factory) as uow:
        user = uow.users.add("alice@example.org", "x")
        account = uow.accounts.add(user.id, "fake", "main")
        bot = uow.bots.add(user.id, "dca", "dca one", dca_config("999"), account_id=account.id)
        ids = str(user.id), str(account.id), str(bot.id)
    return StoreJournal(factory), *ids


def entry(account: str, bot: str, step: str, notional: str) -> JournalOrder:
    order = Order(ClientOrderId(bot, 1, step), BTC, Side.BUY, OrderType.LIMIT, Decimal("0.001"), Decimal(20000))
    return JournalOrder(account, bot, order, T0, notional=Decimal(notional))


def stored(journal: StoreJournal) -> list[tuple[str, Decimal | None]]:
    with UnitOfWork(journal.session_factory) as uow:
        rows = uow.session.execute(sa.select(OrderRow.client_order_id, OrderRow.guard_notional)
                                   .order_by(OrderRow.client_order_id)).all()
    return [(cid, notional) for cid, notional in rows]


def test_orders_journalled_in_a_transaction_count_in_its_later_reads_and_commit_together(database_url: str) -> None:
    journal, user, account, bot = make_db(database_url)
    first, second = entry(account, bot, "b", "20"), entry(account, bot, "s1", "30")
    with journal.transaction() as tx:
        tx.prefetch([bot], [first.key, second.key], [(bot, 1)])
        assert tx.get_order(first.order.client_id) is None  # read ahead: not journalled
        tx.add_order(first)
        # the guard judges the next order against the totals: the first counts already
        assert tx.spent_today(user, account, T0.date()).user == Decimal(20)
        tx.add_order(second)
        found = tx.get_order(second.order.client_id)
        assert found is not None and found.notional == Decimal(30)
        assert [e.key for e in tx.open_orders(account)] == [first.key, second.key]
        tx.save_deal(account, Deal(bot, 1, BTC, Direction.LONG, T0))
        assert stored(journal) == []  # nothing is visible outside before the commit
    assert stored(journal) == [(first.key, Decimal(20)), (second.key, Decimal(30))]


def test_the_same_client_id_twice_in_one_transaction_is_refused_at_once(database_url: str) -> None:
    journal, _user, account, bot = make_db(database_url)
    with journal.transaction() as tx:
        tx.prefetch([bot], [], [])
        tx.add_order(entry(account, bot, "b", "20"))
        with pytest.raises(ValueError, match="already journalled"):
            tx.add_order(entry(account, bot, "b", "20"))


def test_an_order_journalled_by_another_transaction_meanwhile_fails_the_commit_and_nothing_is_written(
        database_url: str) -> None:
    """What two writers racing for one client id get: the one-statement-per-order journal
    raised in ``add_order``; the batched one raises when its INSERT goes out (at the
    commit here), and the transaction's other writes (the bot's state) go with it."""
    journal, user, account, bot = make_db(database_url)
    racing = entry(account, bot, "b", "20")
    with pytest.raises(ValueError, match="already journalled"), journal.transaction() as tx:
        tx.prefetch([bot], [racing.key], [])
        record = tx.get_bot(bot)
        assert record is not None
        tx.add_order(racing)
        with UnitOfWork(journal.session_factory) as other:  # another worker, committed first
            other.orders.journal(int(user), int(account), racing.order, bot_id=int(bot))
        tx.save_bot(evolve(record, state={"lost": True}))
    with UnitOfWork(journal.session_factory) as uow:
        assert uow.session.get(Bot, int(bot)).state is None  # type: ignore[union-attr]
    assert stored(journal) == [(racing.key, None)]  # the other's row, alone


def test_a_deal_read_ahead_is_updated_in_place_and_a_new_one_inserted(database_url: str) -> None:
    journal, user, account, bot = make_db(database_url)
    with journal.transaction() as tx:
        tx.save_deal(account, Deal(bot, 1, BTC, Direction.LONG, T0))
    with journal.transaction() as tx:
        tx.prefetch([bot], [], [(bot, 1), (bot, 2), (bot, 3)])
        tx.save_deal(account, Deal(bot, 1, BTC, Direction.LONG, T0, bought=Decimal("0.5")))
        tx.save_deal(account, Deal(bot, 2, BTC, Direction.LONG, T0))
        tx.save_deal(account, Deal(bot, 3, BTC, Direction.LONG, T0))  # new ones are inserted as a batch:
        tx.save_deal(account, Deal(bot, 3, BTC, Direction.LONG, T0, bought=Decimal("0.25")))  # the last wins
        assert tx.uow.deals.get(int(user), int(bot), 3).bought == Decimal("0.25")  # a read sees the batch
        tx.save_deal(account, Deal(bot, 3, BTC, Direction.LONG, T0, bought=Decimal("0.75")))  # then updates it
    with UnitOfWork(journal.session_factory) as uow:
        rows = uow.session.execute(sa.select(DealRow.no, DealRow.bought).order_by(DealRow.no)).all()
    assert [(no, bought) for no, bought in rows] == [(1, Decimal("0.5")), (2, Decimal(0)), (3, Decimal("0.75"))]


def test_a_bot_saved_by_another_transaction_meanwhile_fails_the_commit(database_url: str) -> None:
    """The bots' states go out as one batched UPDATE; each row still matches only the
    version this transaction read, so a change made meanwhile (the web process pausing
    the bot) is not overwritten: the commit fails, the order with it."""
    journal, user, account, bot = make_db(database_url)
    with pytest.raises(StaleDataError), journal.transaction() as tx:
        tx.prefetch([bot], [], [])
        record = tx.get_bot(bot)
        assert record is not None
        with UnitOfWork(journal.session_factory) as other:
            other.bots.set_status(int(user), int(bot), "paused")
        tx.add_order(entry(account, bot, "b", "20"))
        tx.save_bot(evolve(record, state={"stepped": True}))
    with UnitOfWork(journal.session_factory) as uow:
        row = uow.session.get(Bot, int(bot))
        assert row is not None and (row.status, row.state) == ("paused", None)
    assert stored(journal) == []


def test_bots_saved_together_are_read_back_as_saved_in_the_transaction_and_after(database_url: str) -> None:
    journal, _user, _account, bot = make_db(database_url)
    with journal.transaction() as tx:
        tx.prefetch([bot], [], [])
        record = tx.get_bot(bot)
        assert record is not None
        tx.save_bot(evolve(record, state={"n": 1}, status="paused", status_reason="guard"))
        assert tx.get_bot(bot) == evolve(record, state={"n": 1}, status="paused", status_reason="guard")
        assert [b.state for b in tx.bots(_account)] == [{"n": 1}]  # written before the listing reads
        tx.save_bot(evolve(record, state={"n": 2}, status="paused", status_reason="guard"))
    with journal.transaction() as tx:
        again = tx.get_bot(bot)
        assert again is not None and (again.state, again.status, again.status_reason) == ({"n": 2}, "paused", "guard")
