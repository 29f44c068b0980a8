"""The FastAPI application: thin routes that parse, authorize and call services.

``create_app`` is the uvicorn factory (``sealbot.web.app:create_app``): without an
argument it opens the platform from the instance's settings; tests and the demo pass
their own ``Platform``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

import sealbot
from sealbot.services.platform import Platform, platform_to_serve
from sealbot.services.scaleout import signal_gate_for
from sealbot.web import backtest_pages, errors, pages
from sealbot.web.api import (
    accounts,
    auth,
    backtests,
    bots,
    copysets,
    deals,
    guard_limits,
    kill,
    misc,
    notifications,
    portfolio,
    signals,
    smart_trades,
)
from sealbot.web.errors import error_response

__all__ = ["create_app", "error_response"]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
STATIC_DIR = Path(__file__).parent / "static"


def create_app(platform: Platform | None = None) -> FastAPI:
    app = FastAPI(title="sealbot", version=sealbot.__version__, docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json",
                  description="sealbot's REST API. Authenticate with a session cookie (plus X-CSRF-Token on "
                              "changes) or a personal token: `Authorization: Bearer sbt_...`.")
    app.state.platform = platform or platform_to_serve()
    app.state.signal_gate = signal_gate_for(app.state.platform)  # the inbox, or RabbitMQ (docs/deploy.md)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https":
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    errors.install(app)
    pages.install(app)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok", "version": sealbot.__version__}

    for module in (auth, accounts, backtests, bots, copysets, deals, guard_limits, kill, misc, notifications, portfolio,
                   signals, smart_trades):
        app.include_router(module.router, responses=errors.ERROR_RESPONSES)
    app.include_router(pages.router, include_in_schema=False)
    app.include_router(backtest_pages.router, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
