"""The fence guards the database, the pinned signature the exchange: a worker paused
between committing an order attempt and sending it wakes after another worker claimed
the partition and re-sent the order; its late request is refused by the exchange (it is
signed with the attempt time it journalled), and its next journal read is fenced.

On SQLite and PostgreSQL, with simex over HTTP; no broker needed (the claim is what the
broker's failover would trigger)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from engine.simex_env import dca, seed, simex_venue
from sealbot.domain import ClientOrderId, Order, OrderType, Pair, Side
from sealbot.engine.clock import SystemClock
from sealbot.engine.journal import AccountRecord
from sealbot.engine.orders import Observation, OrderManager
from sealbot.engine.scaleout.fence import CURRENT, FencedJournal, Scope
from sealbot.engine.scaleout.partitions import Fenced, PartitionStore
from sealbot.simex import SimexServer

T = TypeVar("T")


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as sx:
        yield sx


def _in_scope(scope: Scope, work: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
    """``work`` as a task of the worker that holds ``scope`` (its own context)."""

    async def run() -> T:
        CURRENT.set(scope)
        return await work()

    return asyncio.create_task(run())


async def test_a_paused_worker_wakes_after_a_takeover_and_its_late_order_is_refused(
        simex: SimexServer, database_url: str) -> None:
    sx_account = simex.admin.create_account("alice", {"USDT": "100000"})
    key = simex.admin.create_key(sx_account["id"])
    plain, account_id, bots = seed(database_url, [dca()])
    store = PartitionStore(plain.session_factory, 8)
    store.ensure()
    partition = store.partition_of(account_id)
    journal_a, journal_b = FencedJournal(plain.session_factory, store), FencedJournal(plain.session_factory, store)
    record = AccountRecord(account_id, "1", "binance")
    venue_a, venue_b = simex_venue(simex.base_url, key["key"], key["secret"]), \
        simex_venue(simex.base_url, key["key"], key["secret"])
    for venue in (venue_a, venue_b):
        venue.exchange.options["recvWindow"] = 1_000
    a = OrderManager(record, venue_a, journal_a, clock=SystemClock(), clock_skew_margin=0.5)
    b = OrderManager(record, venue_b, journal_b, clock=SystemClock(), clock_skew_margin=0.5)
    order = Order(ClientOrderId(bots[0], 1, "b"), Pair("BTC", "USDT"), Side.BUY, OrderType.MARKET, Decimal("0.001"))
    paused, resume = asyncio.Event(), asyncio.Event()
    send_a = venue_a.create_order

    async def paused_send(o: Order, attempt_at: datetime | None = None) -> Order:
        paused.set()
        await resume.wait()  # SIGSTOP after the attempt's commit, before its request
        return await send_a(o, attempt_at)

    venue_a.create_order = paused_send  # type: ignore[method-assign]

    def on_simex() -> list[dict[str, Any]]:
        return [o for o in simex.admin.orders(sx_account["id"]) if o["client_id"] == order.client_id.text]

    async def a_places() -> list[Observation]:
        with journal_a.transaction() as tx:
            a.journal_new(tx, bots[0], order)
        return await a.send(order.client_id)

    try:
        worker_a = _in_scope(Scope(partition, store.claim(partition, "a")), a_places)
        await paused.wait()

        scope_b = Scope(partition, store.claim(partition, "b"))  # the broker moved the partition
        assert await _in_scope(scope_b, b.reconcile) == []  # A's attempt may still arrive
        await asyncio.sleep(b.in_flight_window)
        await _in_scope(scope_b, b.reconcile)  # it cannot any more: B re-sends
        assert len(on_simex()) == 1

        resume.set()  # A wakes: its request is refused (-1021), its next journal read fenced
        with pytest.raises(Fenced):
            await worker_a
        assert len(on_simex()) == 1
        assert len(simex.admin.orders(sx_account["id"])) == 1
    finally:
        resume.set()
        await venue_a.close()
        await venue_b.close()
