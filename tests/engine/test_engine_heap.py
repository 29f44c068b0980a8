"""Full collections wait for an idle moment; what survives them is frozen."""

from __future__ import annotations

import gc
import weakref
from dataclasses import replace

from sealbot.domain import TimerFired
from sealbot.engine.clock import FakeClock
from sealbot.engine.heap import NEVER, QuietCollector
from sealbot.engine.journal import AccountRecord
from sealbot.engine.runner import InProcessRunner
from sealbot.venues.base import Venue

from .test_engine_runner import ACCOUNT, LOOSE, SETTINGS, setup


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_full_collections_wait_for_idle_and_survivors_are_frozen() -> None:
    before = gc.get_threshold()
    quiet = QuietCollector(every=2)
    try:
        quiet.install()
        assert gc.get_threshold()[2] == NEVER and gc.get_freeze_count() > 0
        assert not quiet.due() and not quiet.idle()
        while gc.get_count()[2] < 2:  # young collections happen as usual...
            [Cycle() for _ in range(1000)]
        assert quiet.due()  # ...and as many as would have triggered a full one happened
        garbage = Cycle()
        del garbage
        assert quiet.idle() and not quiet.due()
    finally:
        quiet.uninstall()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_every_sweep_unfreezes_first_so_old_cycles_are_freed_too() -> None:
    quiet = QuietCollector(sweep_every=2)
    try:
        quiet.install()  # collection 1
        old = Cycle()
        ref = weakref.ref(old)
        quiet.collect()  # 2, a sweep: the cycle is alive, and frozen
        del old
        quiet.collect()  # 3: frozen objects are not looked at, the dead cycle stays
        assert ref() is not None
        quiet.collect()  # 4, a sweep: unfrozen first, so it is freed
        assert ref() is None
    finally:
        quiet.uninstall()


def quiet_engine() -> tuple[InProcessRunner, FakeClock]:
    """An engine on the runner tests' account, with quiet GC on."""
    journal, venue, clock = setup()

    async def factory(_account: AccountRecord) -> Venue:
        return venue

    return InProcessRunner(journal, factory, guard=LOOSE, clock=clock,
                           settings=replace(SETTINGS, quiet_gc=True)), clock


async def test_an_engine_with_quiet_gc_collects_only_when_every_account_is_idle() -> None:
    before = gc.get_threshold()
    runner, clock = quiet_engine()
    try:
        await runner.start_account(ACCOUNT.id)
        quiet, acc = runner.collector, runner.accounts[ACCOUNT.id]
        assert quiet is not None and gc.get_threshold()[2] == NEVER and acc.on_idle is not None
        while not quiet.due():
            [Cycle() for _ in range(1000)]
        done = quiet.collections
        acc.queue.put_nowait(("7", TimerFired(clock.now())))
        acc.on_idle()  # some account went idle, but this one still has work queued: no collection
        assert quiet.collections == done
        await acc.drain()
        acc.on_idle()
        assert quiet.collections == done + 1
    finally:
        await runner.stop()
    assert gc.get_threshold() == before


async def test_an_engine_that_is_never_idle_still_collects_once_overdue() -> None:
    runner, clock = quiet_engine()
    try:
        await runner.start_account(ACCOUNT.id)
        quiet, acc = runner.collector, runner.accounts[ACCOUNT.id]
        assert quiet is not None and acc.on_idle is not None
        acc.queue.put_nowait(("7", TimerFired(clock.now())))  # this account always has work queued
        while not quiet.due():
            [Cycle() for _ in range(1000)]
        done = quiet.collections
        acc.on_idle()
        assert quiet.collections == done  # due, not overdue: it waits for an idle moment
        while not quiet.overdue():
            [Cycle() for _ in range(1000)]
        acc.on_idle()
        assert quiet.collections == done + 1  # the heap does not grow without bound behind a busy account
    finally:
        await runner.stop()
