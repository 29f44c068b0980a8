"""JSON-safe forms of domain values that bot states carry (Decimals as strings)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sealbot.domain import CloseReason, Deal, DealStatus, Direction, Pair

_DEAL_DECIMALS = ("bought", "spent", "sold", "received", "fees_quote")


def dump_deal(deal: Deal | None) -> dict[str, Any] | None:
    if deal is None:
        return None
    out: dict[str, Any] = {
        "bot": deal.bot,
        "no": deal.no,
        "pair": deal.pair.symbol,
        "direction": deal.direction.value,
        "opened_at": deal.opened_at.isoformat(),
        "status": deal.status.value,
        "closed_at": deal.closed_at.isoformat() if deal.closed_at else None,
        "close_reason": deal.close_reason.value if deal.close_reason else None,
    }
    out.update({name: str(getattr(deal, name)) for name in _DEAL_DECIMALS})
    return out


def load_deal(data: Mapping[str, Any] | None) -> Deal | None:
    if data is None:
        return None
    return Deal(
        bot=data["bot"],
        no=int(data["no"]),
        pair=Pair.parse(data["pair"]),
        direction=Direction(data["direction"]),
        opened_at=datetime.fromisoformat(data["opened_at"]),
        status=DealStatus(data["status"]),
        closed_at=datetime.fromisoformat(data["closed_at"]) if data["closed_at"] else None,
        close_reason=CloseReason(data["close_reason"]) if data["close_reason"] else None,
        **{name: Decimal(data[name]) for name in _DEAL_DECIMALS},
    )
