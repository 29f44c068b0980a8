"""A candle wakes several bots of one account: one transaction, then the orders.

And the trigger index stays safe while events are queued: a bot with something queued
ahead of a candle is held awake, so the candle is judged against the interest the bot
has when the candle's turn comes, not the one it had when the candle arrived.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from sealbot.domain import Candle, CandleClosed, Event, Order, OrderStatus, TimerFired
from sealbot.engine.clock import FakeClock
from sealbot.engine.journal import BotRecord, JournalTx, MemoryJournal
from sealbot.engine.live import wakes

from .fakes import T0, FakeVenue
from .test_engine_runner import ACCOUNT, BTC, dca_config, started


class CountingJournal(MemoryJournal):
    """Records, per committed transaction, which bots it saved and which orders it added."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[tuple[set[str], set[str]]] = []

    @contextmanager
    def transaction(self) -> Iterator[JournalTx]:
        with super().transaction() as tx:
            yield tx
            writes = tx._undo  # type: ignore[attr-defined]
            self.commits.append(({k for t, k, _ in writes if t is self.data.bots},
                                 {k for t, k, _ in writes if t is self.data.orders}))


def setup(bots: list[str]) -> tuple[CountingJournal, FakeVenue, FakeClock]:
    clock = FakeClock((T0 + timedelta(minutes=1)).timestamp())
    venue = FakeVenue(now=clock.now)
    journal = CountingJournal()
    journal.add_account(ACCOUNT)
    with journal.transaction() as tx:
        for bot_id in bots:
            tx.save_bot(BotRecord(bot_id, "alice", ACCOUNT.id, "dca", dca_config(bot_id), None))
    return journal, venue, clock


def flat(i: int, price: str) -> Candle:
    p = Decimal(price)
    return Candle(BTC, "1m", T0 + timedelta(minutes=i), p, p, p, p, Decimal(10))


async def test_bots_woken_by_one_candle_commit_together_and_every_intent_precedes_its_request() -> None:
    journal, venue, clock = setup(["7", "8", "9"])
    runner, acc = await started(journal, venue, clock)
    seen_pending: list[bool] = []

    def check(order: Order) -> None:  # the exchange receives it: the journal must know it already
        entry = journal.data.orders.get(order.client_id.text)
        seen_pending.append(entry is not None and entry.order.status is OrderStatus.PENDING)

    venue.on_create = check
    journal.commits.clear()
    runner.hub.publish("fake", flat(0, "100"))
    await acc.drain()
    bases = {f"sb{b}-1-bo" for b in ("7", "8", "9")}
    # the candle's step: the three states and the three base orders in one commit
    assert journal.commits[0] == ({"7", "8", "9"}, bases)
    assert bases <= set(venue.created) and seen_pending and all(seen_pending)
    assert len(venue.created) == len(set(venue.created))
    await runner.stop()


async def test_a_bot_whose_step_fails_fails_alone() -> None:
    journal, venue, clock = setup(["7", "8", "9"])
    runner, acc = await started(journal, venue, clock)

    class Broken:
        def __init__(self, module: Any) -> None:
            self.module = module

        def __getattr__(self, name: str) -> Any:
            return getattr(self.module, name)

        def step(self, config: Any, state: Any, event: Event) -> Any:
            raise RuntimeError("bot 8 is broken")

    acc.bots["8"].module = Broken(acc.bots["8"].module)  # type: ignore[assignment]
    runner.hub.publish("fake", flat(0, "100"))
    with pytest.raises(RuntimeError, match="bot 8 is broken"):
        await acc.drain()
    assert {"sb7-1-bo", "sb9-1-bo"} <= set(venue.created)
    assert not any(text.startswith("sb8-") for text in venue.created)
    assert journal.data.bots["8"].state is None and journal.data.bots["7"].state is not None
    await runner.stop()


async def test_a_bot_with_events_queued_is_held_awake_until_they_are_processed() -> None:
    journal, venue, clock = setup(["7"])
    runner, acc = await started(journal, venue, clock)
    runner.hub.publish("fake", flat(0, "100"))  # opens a deal: the bot now sleeps
    await acc.drain()
    live = acc.bots["7"]
    interest = live.interest
    assert not interest.every_candle  # it sleeps until a level, a time or a fill
    quiet = "100"
    assert not wakes(interest, CandleClosed(flat(1, quiet)))
    runner.hub.publish("fake", flat(1, quiet))
    assert acc.queue.empty()  # the index did not wake it
    acc._enqueue("7", TimerFired(clock.now()))  # something for the bot is waiting in line
    runner.hub.publish("fake", flat(2, quiet))
    assert acc.queue.qsize() == 2  # held awake: the candle waits behind the bot's event
    steps = acc.steps
    await acc.drain()
    assert acc.steps == steps  # judged at its turn against the interest then: nothing to do
    runner.hub.publish("fake", flat(3, quiet))
    assert acc.queue.empty()  # released once its events were processed
    await runner.stop()
