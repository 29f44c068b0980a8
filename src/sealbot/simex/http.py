"""What both dialects share at the HTTP edge: parameters, the client IP, faults, JSON.

Kept free of any dialect's codes: each dialect passes in how it renders a
rate-limit refusal.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from sealbot.simex.faults import Faults

EIGHT = Decimal("0.00000001")


def fmt(value: Decimal | None, places: Decimal = EIGHT) -> str:
    """Decimal as the fixed-point string exchanges print (8 places by default)."""
    if value is None:
        return "0"
    return format(value.quantize(places), "f")


def plain(value: Decimal) -> str:
    """Decimal without exponent or trailing zeros (KuCoin style)."""
    text = format(value.normalize(), "f")
    return text


@dataclass
class Incoming:
    """One request, read once."""

    method: str
    path: str
    ip: str
    query: str
    body: bytes
    params: dict[str, str]
    headers: dict[str, str]


async def read_request(request: Request) -> Incoming:
    body = await request.body()
    query = request.url.query
    params = dict(parse_qsl(query, keep_blank_values=True))
    ctype = request.headers.get("content-type", "")
    if body and "application/x-www-form-urlencoded" in ctype:
        params.update(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
    client = request.client
    return Incoming(request.method, request.url.path, client.host if client else "unknown", query, body,
                    params, {k.lower(): v for k, v in request.headers.items()})


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), status_code=status, headers=headers,
                    media_type="application/json")


async def apply_faults(faults: Faults, key: str | None, path: str,
                       rate_limited: Callable[[], Response]) -> Response | None:
    """Run the transport faults that match this request; a Response ends it early."""
    rule = faults.take(("latency", "timeout", "error_5xx", "rate_limit"), key, path)
    if rule is None:
        return None
    if rule.kind == "latency":
        await asyncio.sleep(float(rule.value))
        return None
    if rule.kind == "timeout":
        await asyncio.sleep(float(rule.value))
        return Response("Gateway Timeout", status_code=504, media_type="text/plain")
    if rule.kind == "error_5xx":
        return Response("Service Unavailable", status_code=int(rule.value), media_type="text/plain")
    return rate_limited()


async def client_texts(ws: WebSocket) -> AsyncIterator[str]:
    """Each message a websocket client sends, as text (a binary frame decoded as UTF-8),
    until it goes away."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        yield text if text is not None else (message.get("bytes") or b"").decode("utf-8", "replace")
