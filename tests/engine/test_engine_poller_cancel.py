"""Stopping an account stops its poller even when the stop lands the moment a market
order woke it.

Python 3.11's ``asyncio.wait_for`` returns the inner result, swallowing a cancel that
arrives after the inner future completed but before ``wait_for`` resumed (fixed in 3.12).
The poller waited with ``wait_for(poll_now.wait(), poll_interval)``: a market order set
``poll_now`` and a stop in that window left the poller running, and ``stop()`` awaited it
forever. That is the hang ``test_services_engine_host`` showed now and then (about 1 run
in 10-25 beside a CPU hog), seen with py-spy and a task dump: the poller "cancelling"
yet back in ``wait_for``, the test awaiting it in ``AccountRunner.stop``.
"""

from __future__ import annotations

import asyncio

import pytest

from sealbot.engine.journal import AccountRecord
from sealbot.engine.runner import InProcessRunner, RunnerSettings
from sealbot.venues.base import Venue

from .fakes import FakeVenue
from .test_engine_runner import ACCOUNT, LOOSE, setup


async def test_a_stop_right_after_a_market_order_woke_the_poller_stops_it() -> None:
    journal, _, clock = setup()
    venue = FakeVenue(now=clock.now)

    async def factory(_account: AccountRecord) -> Venue:
        return venue

    runner = InProcessRunner(journal, factory, guard=LOOSE, clock=clock,
                             settings=RunnerSettings(poll_feeds=False, background=True, poll_interval=60))
    await runner.start_account(ACCOUNT.id)
    acc = runner.accounts[ACCOUNT.id]
    poller = next(t for t in acc._tasks if t.get_name().endswith("poller"))
    for _ in range(5):
        await asyncio.sleep(0)  # the poller is waiting for poll_now or its interval
    acc._poll_now.set()  # a market order went out: the poller's wait is over...
    await asyncio.sleep(0)  # ...its inner wait finished, the poller itself not yet resumed
    poller.cancel()  # and the account stops right then
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(poller, 5)
    acc._tasks.remove(poller)
    await runner.stop()
