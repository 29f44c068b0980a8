"""``sealbot serve`` when the web server cannot start: the error that stopped it is the
one reported. The embedded engine's sync task used to die with an AttributeError
('NoneType' object has no attribute 'done') under it, because ``EngineHost.stop``
cleared the task that ``sync_until`` was still waiting on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import pytest

from sealbot.engine.app import EngineOptions
from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.runner import RunnerSettings
from sealbot.services.engine_host import EngineHost
from sealbot.services.platform import Platform
from sealbot.services.serving import serve
from sealbot.simex import SimexServer


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as server:
        yield server


def _options() -> EngineOptions:
    return EngineOptions(runner=RunnerSettings(poll_interval=0.1, feed_interval=0.1, market_ttl=0),
                         guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))), watchdog_interval=3600)


async def test_stopping_the_engine_ends_sync_until_quietly(platform: Platform) -> None:
    host = EngineHost(platform, options=_options())
    await host.start()
    syncing = asyncio.create_task(host.sync_until(asyncio.Event()))
    await asyncio.sleep(0.05)  # waiting on the engine task
    await host.stop()
    await asyncio.wait_for(syncing, 10)  # returns: the engine was stopped on purpose


async def test_a_server_that_cannot_bind_reports_its_own_error_and_stops_the_engine(platform: Platform) -> None:
    failures: list[BaseException] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: failures.append(context.get("exception") or Exception(context)))
    with pytest.raises(OverflowError, match="port must be 0-65535"):
        await serve(platform, host="127.0.0.1", port=99999, engine=True, options=_options())
    await asyncio.sleep(0.1)
    tasks = [t for t in asyncio.all_tasks() if t.get_name() == "engine"]
    assert all(t.done() and t.exception() is None for t in tasks)
    assert failures == []
    again = EngineHost(platform, options=_options())  # the engine's lock was released
    await again.start()
    await again.stop()
