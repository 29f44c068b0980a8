"""Collections wait for an idle moment (young ones too); what survives them is frozen."""

from __future__ import annotations

import gc
import weakref

from sealbot.domain import TimerFired
from sealbot.domain.evolve import evolve
from sealbot.engine.clock import FakeClock
from sealbot.engine.heap import NEVER, QuietCollector
from sealbot.engine.journal import AccountRecord
from sealbot.engine.runner import InProcessRunner
from sealbot.venues.base import Venue

from .test_engine_runner import ACCOUNT, LOOSE, SETTINGS, setup


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_collections_wait_for_idle_and_survivors_are_frozen() -> None:
    before = gc.get_threshold()
    quiet = QuietCollector(young=5_000, young_limit=20_000)
    try:
        quiet.install()
        assert gc.get_threshold()[0] == 20_000 and gc.get_threshold()[2] == NEVER and gc.get_freeze_count() > 0
        assert not quiet.due() and not quiet.idle()
        garbage = [Cycle() for _ in range(6_000)]  # more new objects than ``young``...
        del garbage
        assert gc.get_count()[1] == 0  # ...and no young collection ran on its own (CPython's would have: 700)
        assert quiet.due() and not quiet.overdue()
        assert quiet.idle() and not quiet.due()  # the idle moment collects them
        while not quiet.overdue():  # never idle: past ``young_limit`` a young collection runs on its own...
            [Cycle() for _ in range(1_000)]
        assert gc.get_count()[1] == 1 and quiet.due()  # ...and the next item boundary must collect
        assert quiet.idle() and not quiet.overdue()
    finally:
        quiet.uninstall()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_a_sweep_unfreezes_first_once_the_frozen_heap_grew_a_quarter_so_old_cycles_are_freed_too() -> None:
    quiet = QuietCollector()
    try:
        quiet.install()  # the first collection sweeps
        old = Cycle()
        ref = weakref.ref(old)
        quiet.collect()  # the cycle is alive, and frozen
        del old
        quiet.collect()  # frozen objects are not looked at, the dead cycle stays
        assert ref() is not None and quiet.sweeps == 1
        grown = [Cycle() for _ in range(gc.get_freeze_count() // 4 + 1_000)]
        quiet.collect()  # the newcomers are frozen: the frozen heap grew by more than a quarter
        assert ref() is not None and quiet.sweeps == 1
        quiet.collect()  # a sweep: unfrozen first, so the dead cycle is freed
        assert ref() is None and quiet.sweeps == 2
        del grown
    finally:
        quiet.uninstall()


def quiet_engine() -> tuple[InProcessRunner, FakeClock]:
    """An engine on the runner tests' account, with quiet GC on."""
    journal, venue, clock = setup()

    async def factory(_account: AccountRecord) -> Venue:
        return venue

    return InProcessRunner(journal, factory, guard=LOOSE, clock=clock,
                           settings=evolve(SETTINGS, quiet_gc=True)), clock


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
