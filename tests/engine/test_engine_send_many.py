"""The orders one step asked for go out together: their attempts recorded in one
transaction before the first request, the open ones' answers in one after the last,
when the account's order budget has room for all of them; one by one otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from sealbot.domain import ClientOrderId, Order, OrderStatus, OrderType, Pair, Side
from sealbot.domain.evolve import evolve
from sealbot.engine.budget import Budget, RateLimit
from sealbot.engine.clock import FakeClock
from sealbot.engine.journal import AccountRecord, JournalTx, MemoryJournal
from sealbot.engine.orders import CANCEL_REQUESTED, OrderManager, Rejection

from .fakes import T0, FakeVenue

BTC = Pair("BTC", "USDT")
ACCOUNT = AccountRecord("acc1", "alice", "fake")


class CountingJournal(MemoryJournal):
    """Counts transactions, and what each had seen of the exchange when it began."""

    def __init__(self, venue: FakeVenue) -> None:
        super().__init__()
        self.venue = venue
        self.began_after: list[int] = []  # requests the exchange had received when each began

    @contextmanager
    def transaction(self) -> Iterator[JournalTx]:
        self.began_after.append(len(self.venue.created))
        with super().transaction() as tx:
            yield tx


def limit(step: str, price: str = "100") -> Order:
    return Order(ClientOrderId("b1", 1, step), BTC, Side.BUY, OrderType.LIMIT, Decimal(1), Decimal(price))


def setup(budget: Budget | None = None, clock: FakeClock | None = None) -> tuple[FakeVenue, CountingJournal,
                                                                                  OrderManager]:
    clock = clock or FakeClock(T0.timestamp())
    venue = FakeVenue(now=clock.now)
    journal = CountingJournal(venue)
    return venue, journal, OrderManager(ACCOUNT, venue, journal, clock=clock, budget=budget)


def journal_all(manager: OrderManager, journal: CountingJournal, orders: list[Order]) -> None:
    with journal.transaction() as tx:
        for order in orders:
            manager.journal_new(tx, "b1", order)
    journal.began_after.clear()


async def test_three_orders_cost_two_transactions_and_each_attempt_is_recorded_before_its_request() -> None:
    venue, journal, manager = setup()
    orders = [limit("so1"), limit("so2", "99"), limit("tp", "101")]
    journal_all(manager, journal, orders)
    attempts_seen: list[int] = []

    def check(order: Order) -> None:  # what the journal held when the request went out
        with MemoryJournal.transaction(journal) as tx:
            entry = tx.get_order(order.client_id)
            assert entry is not None and entry.order.status is OrderStatus.PENDING
            attempts_seen.append(entry.attempts)

    venue.on_create = check
    assert await manager.send_many([o.client_id for o in orders]) == []
    assert venue.created == [o.client_id.text for o in orders]
    assert attempts_seen == [1, 1, 1]
    assert journal.began_after == [0, 3]  # the attempts before the first request, the answers after the last
    with journal.transaction() as tx:
        for order in orders:
            entry = tx.get_order(order.client_id)
            assert entry is not None and entry.order.status is OrderStatus.OPEN and entry.order.exchange_id


async def test_what_is_not_to_be_sent_is_reported_and_the_rest_still_go_out() -> None:
    venue, journal, manager = setup()
    orders = [limit("a"), limit("b"), limit("c")]
    journal_all(manager, journal, orders)
    with journal.transaction() as tx:  # a kill switch cancelled b before it went out
        entry = tx.get_order(orders[1].client_id)
        assert entry is not None
        tx.put_order(evolve(entry, reason=CANCEL_REQUESTED))
    venue.faults = ["funds"]  # a is refused by the exchange
    observations = await manager.send_many([o.client_id for o in orders])
    assert venue.created == [orders[2].client_id.text]
    assert [type(o).__name__ for o in observations] == ["Rejection", "Order"]
    rejection, canceled = observations
    assert isinstance(rejection, Rejection) and rejection.client_id == orders[0].client_id
    assert isinstance(canceled, Order) and canceled.status is OrderStatus.CANCELED


async def test_a_budget_without_room_for_all_sends_them_one_by_one() -> None:
    clock = FakeClock(T0.timestamp())
    budget = Budget("orders", [RateLimit(2, 10.0)], clock=clock)  # room for two of the three now
    venue, journal, manager = setup(budget, clock)
    orders = [limit("a"), limit("b"), limit("c")]
    journal_all(manager, journal, orders)
    assert await manager.send_many([o.client_id for o in orders]) == []
    assert venue.created == [o.client_id.text for o in orders]
    # one by one, each attempt and answer its own transaction; the third waited for the
    # budget (looked at before the wait, read again after it), never overdrawing it
    assert journal.began_after == [0, 1, 1, 2, 2, 2, 3]
    assert clock.slept
