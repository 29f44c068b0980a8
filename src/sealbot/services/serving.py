"""``sealbot serve``: the web app and, in the embedded deployment, the engine, in one
process and one event loop. They meet only in the database (services/engine_host.py):
the engine is the scale-out worker on the in-process transport, which reads the bot
inbox as soon as a request of this process posted into it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import uvicorn

from sealbot.config import EngineBackend, Settings
from sealbot.engine.app import EngineOptions
from sealbot.engine.clock import Clock
from sealbot.engine.runner import RunnerSettings
from sealbot.logs import uvicorn_log_config
from sealbot.services.engine_host import EngineHost
from sealbot.services.platform import Platform, serve_platform


def long_lived_runner(settings: Settings) -> RunnerSettings:
    """The runner settings of a long-lived engine (``sealbot serve``, ``sealbot worker``):
    full collections wait for idle moments (engine.heap), candles and user-data streams
    as configured."""
    return RunnerSettings(quiet_gc=True, stream_feeds=settings.feed_streams, user_stream=settings.user_streams)


async def serve(platform: Platform, *, host: str, port: int, engine: bool | None = None,
                options: EngineOptions | None = None, clock: Clock | None = None,
                on_started: Callable[[], Any] | None = None, log_level: str = "info") -> None:
    """Serve until uvicorn is told to stop (SIGINT/SIGTERM), then stop the engine cleanly.

    ``engine`` defaults to the ``engine`` setting: ``in-process`` runs the bots here (the
    worker code on the in-process transport; one engine per database, enforced by a
    lock), ``rabbitmq`` serves only the dashboard,
    API and webhook gateway while ``sealbot worker`` processes run the bots
    (docs/deploy.md)."""
    if engine is None:
        engine = platform.settings.engine is EngineBackend.IN_PROCESS
    serve_platform(platform)
    server = uvicorn.Server(uvicorn.Config("sealbot.web.app:create_app", factory=True, host=host, port=port,
                                           log_config=uvicorn_log_config(), log_level=log_level,
                                           proxy_headers=True))
    stop = asyncio.Event()
    # the serving process is long-lived: full collections wait for idle moments (engine.heap)
    options = options or EngineOptions(runner=long_lived_runner(platform.settings))
    engine_host = EngineHost(platform, options=options, clock=clock) if engine else None
    try:
        if engine_host is not None:
            await engine_host.start()  # Refused at once if another engine runs on this database
        syncing = asyncio.create_task(engine_host.sync_until(stop), name="engine") if engine_host is not None else None
        if on_started is not None:
            on_started()
        await server.serve()
        stop.set()
        if syncing is not None:
            await syncing
    finally:
        if engine_host is not None:
            await engine_host.stop()
