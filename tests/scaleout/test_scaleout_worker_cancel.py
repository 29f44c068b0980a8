"""A worker's heartbeat loop that is leaving a partition can still be cancelled.

The RabbitMQ transport's ``_serve`` cancels the heartbeat loop when the broker connection
is gone and waits for it; if that cancel lands while the loop waits for a partition's
consumer to finish (``leave``), it must not be swallowed with the consumer's own CancelledError: the
worker would wait forever and never reconnect (found by the scale-out chaos test, a
woken SIGSTOPped worker). No broker needed."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from sealbot.engine.journal import AccountRecord
from sealbot.engine.scaleout.rabbit import RabbitTransport
from sealbot.engine.scaleout.worker import Worker, WorkerOptions
from sealbot.services import inbox
from sealbot.store import make_session_factory
from sealbot.venues.base import Venue


async def _no_venue(_account: AccountRecord) -> Venue:
    raise AssertionError("no account runs here")


async def test_a_cancel_of_the_leaving_heartbeat_is_not_swallowed(tmp_path: Path) -> None:
    worker = Worker(make_session_factory(f"sqlite:///{tmp_path / 'w.db'}"), _no_venue, inbox.decode,
                    WorkerOptions("amqp://unused", worker_id="w"))

    async def consumer_slow_to_stop() -> None:  # a partition loop stepping its accounts down
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.3)
            raise

    transport = worker.transport
    assert isinstance(transport, RabbitTransport)
    transport._loops[0] = asyncio.create_task(consumer_slow_to_stop())
    await asyncio.sleep(0)
    beat = asyncio.create_task(transport.leave(0, release=False))
    await asyncio.sleep(0.05)
    beat.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(beat, 5)
