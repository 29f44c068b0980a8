"""Errors as JSON: ``{"reason": ...}`` always, ``{"field", "reason"}`` for 422 (FastAPI's
own request validation included), ``{"rule", "reason"}`` for 403."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from sealbot.domain.errors import InvalidConfig, NotFound, OrderRejected, Refused, SealbotError
from sealbot.services.auth import LockedOut, NotAuthenticated
from sealbot.services.webhooks import WebhookRefused
from sealbot.web.schemas import ErrorOut

WEBHOOK_STATUS = {"too_large": 413, "malformed": 422, "stale": 422, "unauthorized": 401, "forbidden": 403,
                  "not_running": 409, "rate_limited": 429, "duplicate": 409}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "the body could not be parsed"},
    401: {"model": ErrorOut, "description": "not authenticated"},
    403: {"model": ErrorOut, "description": "refused by a rule (scope, 2FA, CSRF, admin, key policy)"},
    404: {"model": ErrorOut, "description": "not found (another user's resource is not found either)"},
    422: {"model": ErrorOut, "description": "a field is invalid: field path and reason"},
}


def error_response(exc: SealbotError) -> JSONResponse:
    """Deliberate errors as JSON that names the field (422), the missing thing (404) or the rule (403)."""
    if isinstance(exc, InvalidConfig | OrderRejected):
        return JSONResponse({"field": exc.field, "reason": exc.reason}, status_code=422)
    if isinstance(exc, NotFound):
        return JSONResponse({"reason": f"{exc.kind} not found"}, status_code=404)
    if isinstance(exc, Refused):
        return JSONResponse({"rule": exc.rule, "reason": exc.reason}, status_code=403)
    if isinstance(exc, NotAuthenticated):
        return JSONResponse({"reason": exc.reason}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, LockedOut):
        return JSONResponse({"reason": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, WebhookRefused):
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return JSONResponse({"status": "refused", "kind": exc.kind, "reason": exc.reason, "field": exc.field},
                            status_code=WEBHOOK_STATUS.get(exc.kind, 400), headers=headers)
    if type(exc).__name__ == "Conflict":  # store.errors.Conflict: a concurrent change
        return JSONResponse({"reason": str(exc)}, status_code=409)
    return JSONResponse({"reason": str(exc)}, status_code=400)


def _path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    from sealbot.web import pages

    @app.exception_handler(SealbotError)
    async def sealbot_error(request: Request, exc: SealbotError) -> Response:
        return pages.page_error(request, exc) or error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Pydantic's messages name the rule, never echo the input (``input`` is dropped).
        errors = [{"field": _path(e.get("loc", ())), "reason": str(e.get("msg", "invalid"))} for e in exc.errors()]
        first = errors[0] if errors else {"field": "body", "reason": "invalid"}
        return JSONResponse({**first, "errors": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"reason": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)
