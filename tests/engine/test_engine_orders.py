"""The order manager journals before sending, never places twice, applies fills once."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sealbot.domain import ClientOrderId, Fill, Order, OrderFilled, OrderStatus, OrderType, OrderWasRejected, Pair, Side
from sealbot.engine.clock import FakeClock
from sealbot.engine.journal import AccountRecord, MemoryJournal
from sealbot.engine.orders import FILL_LOOKBACK, Observation, OrderManager
from sealbot.venues.errors import ExchangeUnavailable

from .fakes import T0, FakeVenue

BTC = Pair("BTC", "USDT")
ACCOUNT = AccountRecord("acc1", "alice", "fake")


def order(step: str = "b", kind: OrderType = OrderType.LIMIT, amount: str = "1") -> Order:
    return Order(ClientOrderId("b1", 1, step), BTC, Side.BUY, kind, Decimal(amount),
                 None if kind is OrderType.MARKET else Decimal(100))


def setup() -> tuple[FakeVenue, MemoryJournal, OrderManager, FakeClock]:
    clock = FakeClock(T0.timestamp())
    venue = FakeVenue(now=clock.now)
    journal = MemoryJournal()
    return venue, journal, OrderManager(ACCOUNT, venue, journal, clock=clock), clock


def journal(manager: OrderManager, journal: MemoryJournal, o: Order) -> None:
    with journal.transaction() as tx:
        manager.journal_new(tx, "b1", o)


def apply_all(manager: OrderManager, jr: MemoryJournal, observations: list[Observation]) -> list[object]:
    events = []
    for obs in observations:
        with jr.transaction() as tx:
            result = manager.apply(tx, obs)
        if result:
            events.append(result[1])
    return events


async def test_an_order_is_journalled_pending_before_the_request_goes_out() -> None:
    venue, jr, manager, _ = setup()
    seen: list[OrderStatus | None] = []

    def check(o: Order) -> None:
        with jr.transaction() as tx:
            entry = tx.get_order(o.client_id)
            seen.append(entry.order.status if entry else None)

    venue.on_create = check
    journal(manager, jr, order())
    await manager.send(order().client_id)
    assert seen == [OrderStatus.PENDING]
    with jr.transaction() as tx:
        entry = tx.get_order(order().client_id)
    assert entry is not None and entry.order.status is OrderStatus.OPEN and entry.order.exchange_id == "1"


async def test_a_lost_answer_is_looked_up_and_the_order_is_never_placed_twice() -> None:
    venue, jr, manager, _ = setup()
    venue.faults = ["lost_answer"]
    journal(manager, jr, order())
    await manager.send(order().client_id)
    assert venue.created == ["sbb1-1-b"]
    with jr.transaction() as tx:
        assert tx.get_order(order().client_id).order.status is OrderStatus.OPEN  # type: ignore[union-attr]
    await manager.send(order().client_id)  # a second send of a known order does nothing
    assert len(venue.created) == 1


async def test_an_order_that_never_arrived_is_sent_again_with_the_same_id_once_it_cannot_arrive() -> None:
    venue, jr, manager, clock = setup()
    venue.faults = ["unreachable"]
    journal(manager, jr, order())
    assert await manager.send(order().client_id) == []
    # the request may still be travelling: not found yet means "look again later"
    assert venue.created == [] and manager.unsettled
    clock.advance(manager.in_flight_window - 1)
    assert await manager.resolve(order().client_id) == [] and venue.created == []
    clock.advance(2)
    await manager.resolve(order().client_id)
    assert venue.created == ["sbb1-1-b"]


async def test_a_market_order_that_arrives_after_its_timeout_is_not_placed_twice() -> None:
    """The answer timed out, the exchange carried the request out later: a re-send with
    the same client id would be accepted (the first order is filled, no longer open)."""
    venue, jr, manager, clock = setup()
    late: list[Order] = []
    original = venue.create_order

    async def slow_create(o: Order, attempt_at: datetime | None = None) -> Order:
        if not late:
            late.append(o)  # reaches the exchange after the client gave up
            raise TimeoutError("timed out")
        return await original(o, attempt_at)

    venue.create_order = slow_create  # type: ignore[method-assign]
    market = order(kind=OrderType.MARKET)
    journal(manager, jr, market)
    assert await manager.send(market.client_id) == []
    clock.advance(1)
    assert await manager.resolve(market.client_id) == []  # still unknown: no re-send
    await original(late[0])  # the late request executes on the exchange
    venue.fill("sbb1-1-b", Decimal(1), Decimal(100))
    clock.advance(manager.in_flight_window)
    found = await manager.resolve(market.client_id)
    assert venue.created == ["sbb1-1-b"] and [o.client_id for o in found] == [market.client_id]


async def test_a_rejection_reaches_the_bot_exactly_once() -> None:
    venue, jr, manager, _ = setup()
    venue.faults = ["funds"]
    journal(manager, jr, order())
    observations = await manager.send(order().client_id)
    events = apply_all(manager, jr, observations + observations)
    assert len(events) == 1 and isinstance(events[0], OrderWasRejected)
    assert "insufficient funds" in events[0].reason


async def test_fills_are_applied_once_however_often_they_are_polled() -> None:
    venue, jr, manager, _ = setup()
    journal(manager, jr, order(amount="2"))
    await manager.send(order().client_id)
    venue.fill("sbb1-1-b", Decimal("0.5"), Decimal(99))
    venue.fill("sbb1-1-b", Decimal("1.5"), Decimal(101))
    first = apply_all(manager, jr, await manager.poll())
    again = apply_all(manager, jr, await manager.poll())
    assert [type(e) for e in first] == [OrderFilled, OrderFilled] and again == []
    assert [e.remaining for e in first] == [Decimal("1.5"), Decimal(0)]  # type: ignore[attr-defined]
    with jr.transaction() as tx:
        entry = tx.get_order(order().client_id)
        assert entry is not None and entry.order.status is OrderStatus.FILLED
        assert entry.order.average_price == Decimal("100.5")
        assert len(tx.fills_of(order().client_id)) == 2


async def test_each_poll_reads_trades_from_the_previous_poll_not_from_the_orders_creation() -> None:
    """A level open for days must not make every poll page through days of trades; but
    an order first watched now, and every order after a reconcile, is read from its
    creation, so no fill is skipped."""
    venue, jr, manager, clock = setup()
    asked: list[datetime | None] = []
    fetch = venue.fetch_my_trades

    async def recording(pair: Pair, since: datetime | None = None) -> list[Fill]:
        asked.append(since)
        return await fetch(pair, since)

    venue.fetch_my_trades = recording  # type: ignore[method-assign]
    old = order("old", amount="2")
    journal(manager, jr, old)
    await manager.send(old.client_id)
    await manager.poll()
    assert asked == [T0 - FILL_LOOKBACK]
    clock.advance(3 * 86400)  # three days later, the level still open
    second = clock.now()
    await manager.poll()
    assert asked[-1] == T0 - FILL_LOOKBACK  # from where the first poll began, not days of trades later

    venue.fill("sbb1-1-old", Decimal(1), Decimal(100))  # traded meanwhile: after the last poll began
    clock.advance(60)
    assert [type(e) for e in apply_all(manager, jr, await manager.poll())] == [OrderFilled]
    assert asked[-1] == second - FILL_LOOKBACK

    # an order journalled now (it was pending, so no poll watched it) is read from its creation
    new = order("new")
    journal(manager, jr, new)
    created = clock.now()
    clock.advance(600)
    await manager.send(new.client_id)
    venue.fill("sbb1-1-new", Decimal("0.5"), Decimal(100))
    clock.advance(60)
    assert [type(e) for e in apply_all(manager, jr, await manager.poll())] == [OrderFilled]
    assert asked[-1] == created - FILL_LOOKBACK

    await manager.reconcile()  # after an error or a restart: from every open order's creation again
    assert asked[-1] == T0 - FILL_LOOKBACK


async def test_an_exchange_filled_status_waits_for_its_trades() -> None:
    _venue, jr, manager, _ = setup()
    journal(manager, jr, order(kind=OrderType.MARKET))
    observations = await manager.send(order().client_id)  # filled at once on the exchange
    apply_all(manager, jr, observations)
    with jr.transaction() as tx:
        assert tx.get_order(order().client_id).order.status is OrderStatus.OPEN  # type: ignore[union-attr]
    events = apply_all(manager, jr, await manager.poll())
    assert len(events) == 1
    with jr.transaction() as tx:
        assert tx.get_order(order().client_id).order.status is OrderStatus.FILLED  # type: ignore[union-attr]


async def test_reconcile_after_a_crash_finds_sent_orders_sends_unsent_ones_and_applies_missed_fills() -> None:
    venue, jr, manager, clock = setup()
    sent, unsent = order("b"), order("so1")
    journal(manager, jr, sent)
    journal(manager, jr, unsent)
    # the crash: `sent` reached the exchange (and filled) but its answer was never recorded
    await venue.create_order(sent)
    venue.fill(sent.client_id.text, Decimal(1), Decimal(100))
    events = apply_all(manager, jr, await manager.reconcile())
    assert len([e for e in events if isinstance(e, OrderFilled)]) == 1
    # `unsent` may have left just before the crash and still be travelling: it is sent
    # (same id) only once no earlier request for it can still be carried out
    assert venue.created == ["sbb1-1-b"] and manager.unsettled
    clock.advance(manager.in_flight_window)
    manager.unsettled = False
    assert apply_all(manager, jr, await manager.reconcile()) == []
    assert venue.created == ["sbb1-1-b", "sbb1-1-so1"] and not manager.unsettled
    # a second reconcile changes nothing and sends nothing
    assert apply_all(manager, jr, await manager.reconcile()) == []
    assert len(venue.created) == 2


async def test_an_old_order_that_never_left_is_marked_rejected_not_sent_late() -> None:
    venue, jr, manager, clock = setup()
    journal(manager, jr, order())
    clock.advance(timedelta(hours=1).total_seconds())
    events = apply_all(manager, jr, await manager.reconcile())
    assert venue.created == []
    assert len(events) == 1 and isinstance(events[0], OrderWasRejected)
    assert "never reached the exchange" in events[0].reason


async def test_a_cancel_on_the_exchange_reaches_the_bot_once() -> None:
    venue, jr, manager, _ = setup()
    journal(manager, jr, order())
    await manager.send(order().client_id)
    apply_all(manager, jr, await manager.cancel(order().client_id))
    assert venue.orders["sbb1-1-b"].status is OrderStatus.CANCELED
    with jr.transaction() as tx:
        assert tx.get_order(order().client_id).order.status is OrderStatus.CANCELED  # type: ignore[union-attr]
    assert apply_all(manager, jr, await manager.poll()) == []


async def test_a_cancel_that_failed_or_died_with_the_process_is_sent_again_by_the_next_poll() -> None:
    venue, jr, manager, clock = setup()
    journal(manager, jr, order())
    await manager.send(order().client_id)
    original = venue.cancel_order
    failures = [ExchangeUnavailable("fake", "503")]

    async def flaky_cancel(client_id: ClientOrderId, pair: Pair) -> Order:
        if failures:
            raise failures.pop()
        return await original(client_id, pair)

    venue.cancel_order = flaky_cancel  # type: ignore[method-assign]
    with jr.transaction() as tx:  # the bot's step: the cancel is journalled with its state
        manager.request_cancel(tx, order().client_id)
    assert await manager.cancel(order().client_id) == []  # the request failed
    assert venue.orders["sbb1-1-b"].status is OrderStatus.OPEN
    # a restarted engine (a new manager on the same journal) carries the cancel out
    restarted = OrderManager(ACCOUNT, venue, jr, clock=clock)
    events = apply_all(restarted, jr, await restarted.poll())
    assert venue.orders["sbb1-1-b"].status is OrderStatus.CANCELED
    assert [type(e).__name__ for e in events] == ["OrderCanceled"]
    assert apply_all(restarted, jr, await restarted.poll()) == []  # nothing open: nothing more to do
