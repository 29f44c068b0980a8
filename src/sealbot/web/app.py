"""The FastAPI application: thin routes that parse, authorize and call services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

import sealbot
from sealbot.domain.errors import InvalidConfig, NotFound, Refused, SealbotError

_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def create_app() -> FastAPI:
    app = FastAPI(title="sealbot", version=sealbot.__version__, docs_url="/api/docs", openapi_url="/api/openapi.json")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(SealbotError)
    async def sealbot_error(_: Request, exc: SealbotError) -> JSONResponse:
        return error_response(exc)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers. (Readiness checks come with the engine.)"""
        return {"status": "ok", "version": sealbot.__version__}

    return app


def error_response(exc: SealbotError) -> JSONResponse:
    """Deliberate errors as JSON that names the field (422), the missing thing (404) or the rule (403)."""
    if isinstance(exc, InvalidConfig):
        return JSONResponse({"field": exc.field, "reason": exc.reason}, status_code=422)
    if isinstance(exc, NotFound):
        return JSONResponse({"reason": str(exc)}, status_code=404)
    if isinstance(exc, Refused):
        return JSONResponse({"rule": exc.rule, "reason": exc.reason}, status_code=403)
    return JSONResponse({"reason": str(exc)}, status_code=400)
