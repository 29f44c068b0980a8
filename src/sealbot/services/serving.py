"""``sealbot serve``: the web app and, in the embedded deployment, the engine, in one
process and one event loop. They meet only in the database (services/engine_host.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import uvicorn

from sealbot.engine.app import EngineOptions
from sealbot.engine.clock import Clock
from sealbot.logs import uvicorn_log_config
from sealbot.services.engine_host import EngineHost
from sealbot.services.platform import Platform, serve_platform


async def serve(platform: Platform, *, host: str, port: int, engine: bool = True,
                options: EngineOptions | None = None, clock: Clock | None = None,
                on_started: Callable[[], Any] | None = None, log_level: str = "info") -> None:
    """Serve until uvicorn is told to stop (SIGINT/SIGTERM), then stop the engine cleanly.

    ``engine=False`` serves only the dashboard, API and webhooks: the bots then run in
    ``sealbot worker`` processes elsewhere (docs/deploy.md)."""
    serve_platform(platform)
    server = uvicorn.Server(uvicorn.Config("sealbot.web.app:create_app", factory=True, host=host, port=port,
                                           log_config=uvicorn_log_config(), log_level=log_level,
                                           proxy_headers=True))
    stop = asyncio.Event()
    engine_task: asyncio.Task[None] | None = None
    if engine:
        engine_task = asyncio.create_task(EngineHost(platform, options=options, clock=clock).run_until(stop),
                                          name="engine")
    if on_started is not None:
        on_started()
    try:
        await server.serve()
    finally:
        stop.set()
        if engine_task is not None:
            await engine_task
