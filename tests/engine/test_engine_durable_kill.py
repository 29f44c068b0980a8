"""A kill switch outlives the process that took it, and the watchdog's memory of what it
flagged outlives the process that flagged it (a restart, another owner).

The kill's cancels are journalled with the stop (``CANCEL_REQUESTED``, the order
manager's durable cancel): a cancel that failed, or a process that died before sending
it, leaves the order for the next process to cancel, and a pending order so marked is
never sent. The watchdog's flags are in the journal: a new ``Watchdog`` on the same
journal does not report a foreign order again, but does report a new one."""

from __future__ import annotations

import pytest

from sealbot.domain import ClientOrderId, Order, OrderStatus, Pair
from sealbot.engine.journal import AccountRecord, AlertRecord, BotStatus, _MemoryTx
from sealbot.engine.orders import CANCEL_REQUESTED, OrderManager
from sealbot.engine.watchdog import Watchdog
from sealbot.venues.base import Venue
from sealbot.venues.errors import ExchangeUnavailable

from .test_engine_orders import ACCOUNT as ORDERS_ACCOUNT
from .test_engine_orders import journal as journal_order
from .test_engine_orders import order
from .test_engine_orders import setup as orders_setup
from .test_engine_runner import ACCOUNT, BTC, setup, started, step_market


async def test_a_pending_order_whose_cancel_was_requested_is_never_sent_and_ends_cancelled() -> None:
    """The process died between journalling an order and sending it, and a kill switch
    marked it: the next process's reconcile must not place it (a market buy would fill)."""
    venue, jr, manager, clock = orders_setup()
    journal_order(manager, jr, order())
    with jr.transaction() as tx:
        OrderManager.request_cancel(tx, order().client_id)
    clock.advance(60)  # past the in-flight window: the order "never arrived"
    restarted = OrderManager(ORDERS_ACCOUNT, venue, jr, clock=clock)
    observations = await restarted.reconcile()
    assert venue.created == []
    with jr.transaction() as tx:
        events = [restarted.apply(tx, obs) for obs in observations]
        entry = tx.get_order(order().client_id)
    assert entry is not None and entry.order.status is OrderStatus.CANCELED and entry.order.filled == 0
    # the bot hears a cancel (a DCA bot closing a deal waits for it), exactly once
    assert [type(e[1]).__name__ for e in events if e is not None] == ["OrderCanceled"]


async def test_an_engine_kill_whose_cancels_failed_is_carried_out_by_the_restarted_engine() -> None:
    journal, venue, clock = setup()
    runner, acc = await started(journal, venue, clock)
    await step_market(runner, acc, venue, 0, "100")  # the base order fills; the take-profit rests
    resting = [o for o in venue.orders.values() if o.status is OrderStatus.OPEN]
    assert resting

    async def unreachable(_client_id: ClientOrderId, _pair: Pair) -> Order:
        raise ExchangeUnavailable("fake", "503")

    cancel = venue.cancel_order
    venue.cancel_order = unreachable  # type: ignore[method-assign]
    assert await runner.kill(account=ACCOUNT.id) == 1
    await runner.stop()  # the process goes down with the cancels undone
    assert all(o.status is OrderStatus.OPEN for o in resting)
    assert journal.data.bots["7"].status == BotStatus.STOPPED
    assert {journal.data.orders[o.client_id.text].reason for o in resting} == {CANCEL_REQUESTED}

    venue.cancel_order = cancel  # type: ignore[method-assign]
    restarted, _ = await started(journal, venue, clock)  # loads no bot (it is stopped), reconciles
    assert all(venue.orders[o.client_id.text].status is OrderStatus.CANCELED for o in resting)
    assert all(journal.data.orders[o.client_id.text].order.status is OrderStatus.CANCELED for o in resting)
    await restarted.stop()


async def test_a_restarted_watchdog_does_not_flag_the_same_foreign_order_again_but_flags_a_new_one() -> None:
    journal, venue, clock = setup()
    paused: list[str] = []

    async def venue_for(_account: AccountRecord) -> Venue:
        return venue

    async def pause(account: str, _reason: str) -> list[str]:
        paused.append(account)
        return ["7"]

    venue.place_foreign(BTC, "thief-1")
    first = Watchdog(journal, venue_for, pause, clock=clock)
    assert [f.kind for f in await first.check(ACCOUNT)] == ["foreign_order"]
    assert len(journal.data.alerts) == 1 and paused == [ACCOUNT.id]

    restarted = Watchdog(journal, venue_for, pause, clock=clock)  # nothing in memory
    assert await restarted.check(ACCOUNT) == []
    assert len(journal.data.alerts) == 1 and paused == [ACCOUNT.id]

    venue.place_foreign(BTC, "thief-2")
    findings = await restarted.check(ACCOUNT)
    assert [f.kind for f in findings] == ["foreign_order"] and "thief-2" in findings[0].detail
    assert len(journal.data.alerts) == 2 and "thief-1" not in journal.data.alerts[1].message
    assert paused == [ACCOUNT.id, ACCOUNT.id]


async def test_a_flag_is_not_remembered_when_its_alert_did_not_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flags commit with the alert: an alert that failed to commit (a fenced
    transaction in a worker) leaves the order for the next check to report."""
    journal, venue, clock = setup()

    async def venue_for(_account: AccountRecord) -> Venue:
        return venue

    async def pause(_account: str, _reason: str) -> list[str]:
        return []

    def fenced(_tx: object, _alert: AlertRecord) -> AlertRecord:
        raise RuntimeError("fenced: the partition moved on")

    venue.place_foreign(BTC, "thief-1")
    dog = Watchdog(journal, venue_for, pause, clock=clock)
    with monkeypatch.context() as patch:
        patch.setattr(_MemoryTx, "add_alert", fenced)
        with pytest.raises(RuntimeError, match="fenced"):
            await dog.check(ACCOUNT)
    assert journal.data.flags == {} and journal.data.alerts == []
    assert [f.kind for f in await dog.check(ACCOUNT)] == ["foreign_order"]
    assert len(journal.data.alerts) == 1 and len(journal.data.flags) == 1
