"""``POST /api/v1/signals``: TradingView-style alert webhooks (secret in the body)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from sealbot.services.webhooks import MAX_BODY, SignalGate
from sealbot.web.deps import client_ip
from sealbot.web.schemas import SignalAccepted, SignalRefusedOut

router = APIRouter(prefix="/api/v1", tags=["signals"])

_REFUSED = {"model": SignalRefusedOut}
_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object",
            "description": "A 3Commas-style signal-bot body (secret, bot_uuid, action, timestamp, ...) or "
                           "DCA-bot body (message_type: bot, bot_id, email_token, ...). See docs/web.md.",
            "additionalProperties": True}}},
    },
}


async def _read_capped(request: Request, limit: int) -> bytes:
    """The body, but never more than ``limit + 1`` bytes held in memory."""
    chunks, size = [], 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)


@router.post("/signals", status_code=status.HTTP_202_ACCEPTED, response_model=SignalAccepted,
             openapi_extra=_BODY_DOC,
             responses={400: _REFUSED, 401: _REFUSED, 403: _REFUSED, 409: _REFUSED, 413: _REFUSED, 422: _REFUSED,
                        429: _REFUSED})
async def receive_signal(request: Request) -> JSONResponse:
    """Accept a signal for a bot. Unknown bot and wrong secret get the same 401; stale
    422, replayed 409, oversize 413, over the rate limit 429. Nothing is logged of the body."""
    gate: SignalGate = request.app.state.signal_gate
    body = await _read_capped(request, MAX_BODY)
    accepted = await run_in_threadpool(gate.receive, body, client_ip(request))
    return JSONResponse(SignalAccepted(signal_id=accepted.signal_id, action=accepted.action).model_dump(),
                        status_code=status.HTTP_202_ACCEPTED)
