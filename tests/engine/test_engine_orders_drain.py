"""A read of an account's trades that stops at its request bound never moves the order
manager's marks past the trades it left unread: the next polls go on from where it
stopped (a drain) until one reaches the present, and a reconcile keeps that progress
unless a fill it returned may have been lost."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from sealbot.domain import Fill, Pair
from sealbot.engine.clock import FakeClock
from sealbot.engine.journal import MemoryJournal
from sealbot.engine.orders import FILL_LOOKBACK, OrderManager
from sealbot.venues.base import TradeBatch
from sealbot.venues.trade_paging import ResumeAt

from .fakes import T0, FakeVenue
from .test_engine_orders import ACCOUNT, BTC, apply_all, journal, order


class BoundedVenue(FakeVenue):
    """Reads at most ``per_read`` trades a call, oldest first, and says where to go on."""

    def __init__(self, per_read: int, now: Callable[[], datetime]) -> None:
        super().__init__(now=now)
        self.per_read = per_read
        self.asked: list[tuple[datetime, ResumeAt | None]] = []

    async def read_my_trades(self, pair: Pair, since: datetime, resume: ResumeAt | None = None) -> TradeBatch:
        self.asked.append((since, resume))
        trades = [t for t in self.trades if t.pair == pair and t.at >= since]
        first = resume.from_id if resume is not None and resume.from_id is not None else 0
        chunk = trades[first:first + self.per_read]
        more = first + self.per_read < len(trades)
        return TradeBatch(chunk, ResumeAt(0, first + self.per_read) if more else None)


def bounded(per_read: int) -> tuple[BoundedVenue, MemoryJournal, OrderManager, FakeClock]:
    clock = FakeClock(T0.timestamp())
    venue = BoundedVenue(per_read, clock.now)
    jr = MemoryJournal()
    return venue, jr, OrderManager(ACCOUNT, venue, jr, clock=clock), clock


def fill_ids(observations: Sequence[object]) -> list[str]:
    return [o.trade_id for o in observations if isinstance(o, Fill)]


async def test_a_backlog_is_drained_over_several_polls_each_fill_once_then_polls_go_on_from_the_last() -> None:
    venue, jr, manager, clock = bounded(3)
    big = order("big", amount="10")
    journal(manager, jr, big)
    await manager.send(big.client_id)
    for _ in range(7):
        venue.fill("sbb1-1-big", Decimal(1), Decimal(100))
    clock.advance(600)

    read = []
    for _ in range(3):
        observations = await manager.poll()
        read += fill_ids(observations)
        apply_all(manager, jr, observations)
    assert read == [str(i) for i in range(1, 8)]  # every fill once, in order
    from_creation = T0 - FILL_LOOKBACK
    assert venue.asked == [(from_creation, None), (from_creation, ResumeAt(0, 3)), (from_creation, ResumeAt(0, 6))]
    assert not manager.drains
    with jr.transaction() as tx:
        assert len(tx.fills_of(big.client_id)) == 7

    # caught up: the next poll reads from where the one that caught up began
    caught_up = clock.now()
    clock.advance(5)
    await manager.poll()
    assert venue.asked[-1] == (caught_up - FILL_LOOKBACK, None)


async def test_the_marks_stay_put_while_a_pair_drains() -> None:
    """The bug this fixes: a poll that stopped at its bound used to move every mark to
    the time it began, and the trades it had not read were never asked for again."""
    venue, jr, manager, clock = bounded(2)
    big = order("big", amount="10")
    journal(manager, jr, big)
    await manager.send(big.client_id)
    await manager.poll()  # watched: the mark is T0
    clock.advance(3600)
    watched = T0 - FILL_LOOKBACK
    for _ in range(5):
        venue.fill("sbb1-1-big", Decimal(1), Decimal(100))
    clock.advance(60)
    assert fill_ids(await manager.poll()) == ["1", "2"]
    assert manager.drains[BTC].since == watched and manager.drains[BTC].polls == 1
    clock.advance(3600)
    assert fill_ids(await manager.poll()) == ["3", "4"]
    assert fill_ids(await manager.poll()) == ["5"]
    assert [since for since, _ in venue.asked[1:]] == [watched] * 3


async def test_a_reconcile_keeps_a_drain_that_lost_nothing_and_restarts_one_that_may_have() -> None:
    venue, jr, manager, clock = bounded(2)
    big = order("big", amount="10")
    journal(manager, jr, big)
    await manager.send(big.client_id)
    for _ in range(6):
        venue.fill("sbb1-1-big", Decimal(1), Decimal(100))
    clock.advance(600)
    from_creation = T0 - FILL_LOOKBACK

    apply_all(manager, jr, await manager.poll())  # fills 1, 2 applied
    # an error (a fault on another request): every returned fill is in the books, so the
    # reconcile goes on with the drain rather than reading from creation again
    assert fill_ids(await manager.reconcile()) == ["3", "4"]
    assert venue.asked[-1] == (from_creation, ResumeAt(0, 2))
    # fills 3 and 4 were returned but their step failed: nothing recorded them
    assert fill_ids(await manager.reconcile()) == ["1", "2"]  # from creation again
    assert venue.asked[-1][0] == from_creation and venue.asked[-1][1] is None
    observations = await manager.poll()
    observations += await manager.poll()
    apply_all(manager, jr, observations)
    assert not manager.drains
    with jr.transaction() as tx:
        assert sorted(f.trade_id for f in tx.fills_of(big.client_id)) == [str(i) for i in range(1, 7)]


async def test_an_order_that_needs_older_trades_than_the_drain_reads_starts_it_over() -> None:
    """An order journalled before the drain began but sent after it (it was pending: no
    poll watched it) needs the trades since its creation: the pair is read from there."""
    venue, jr, manager, clock = bounded(2)
    big, late = order("big", amount="10"), order("late", amount="10")
    journal(manager, jr, big)
    await manager.send(big.client_id)
    clock.advance(60)
    late_created = clock.now()
    journal(manager, jr, late)  # pending for now
    clock.advance(3600)
    await manager.poll()  # big watched from here
    mark = clock.now() - FILL_LOOKBACK
    clock.advance(60)
    for _ in range(5):
        venue.fill("sbb1-1-big", Decimal(1), Decimal(100))
    await manager.poll()
    assert manager.drains[BTC].since == mark
    await manager.send(late.client_id)
    await manager.poll()
    assert venue.asked[-1] == (late_created - FILL_LOOKBACK, None)
    assert manager.drains[BTC].since == late_created - FILL_LOOKBACK
    assert late_created - FILL_LOOKBACK < mark - timedelta(minutes=1)
