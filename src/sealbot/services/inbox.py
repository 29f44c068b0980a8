"""The bot inbox: events for a bot that come from outside the engine (webhook signals,
a user's close-at-market or add-funds) wait in the ``bot_inbox`` table until the
engine takes them. The engine's side is one call, ``deliver_pending(platform,
deliver)``, with ``deliver = AccountRunner.deliver`` (or any ``(bot id, event)``
coroutine); an item is marked delivered only after ``deliver`` returned, so a crash
in between delivers it again (bots drop a repeated signal id; a repeated close is a
no-op on a closed deal)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sealbot.domain import AddFunds, AmountType, CloseAtMarket, Event, Pair, SignalAction, SignalReceived
from sealbot.services.platform import Platform
from sealbot.store import UnitOfWork
from sealbot.store.repositories.web import InboxRepository


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: int
    bot_id: int
    event: Event


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def encode(event: SignalReceived | CloseAtMarket | AddFunds) -> tuple[str, dict[str, Any]]:
    """(kind, JSON-safe payload); Decimals as text, times as ISO 8601."""
    if isinstance(event, SignalReceived):
        return "signal", {"signal_id": event.signal_id, "action": event.action.value, "at": event.at.isoformat(),
                          "pair": event.pair.symbol if event.pair else None, "amount": _text(event.amount),
                          "amount_type": event.amount_type.value if event.amount_type else None,
                          "trigger_price": _text(event.trigger_price)}
    if isinstance(event, CloseAtMarket):
        return "close_at_market", {"deal": event.deal, "at": event.at.isoformat()}
    return "add_funds", {"deal": event.deal, "amount": str(event.amount), "amount_type": event.amount_type.value,
                         "at": event.at.isoformat(), "price": _text(event.price)}


def decode(kind: str, data: Mapping[str, Any]) -> Event:
    at = datetime.fromisoformat(data["at"])
    if kind == "signal":
        return SignalReceived(signal_id=data["signal_id"], action=SignalAction(data["action"]), at=at,
                              pair=Pair.parse(data["pair"]) if data.get("pair") else None,
                              amount=Decimal(data["amount"]) if data.get("amount") else None,
                              amount_type=AmountType(data["amount_type"]) if data.get("amount_type") else None,
                              trigger_price=Decimal(data["trigger_price"]) if data.get("trigger_price") else None)
    if kind == "close_at_market":
        return CloseAtMarket(deal=int(data["deal"]), at=at)
    if kind == "add_funds":
        return AddFunds(deal=int(data["deal"]), amount=Decimal(data["amount"]),
                        amount_type=AmountType(data["amount_type"]), at=at,
                        price=Decimal(data["price"]) if data.get("price") else None)
    raise ValueError(f"unknown inbox item kind {kind!r}")


def post(uow: UnitOfWork, owner_id: int, bot_id: int, event: SignalReceived | CloseAtMarket | AddFunds) -> int:
    """Queue ``event`` for the bot inside the caller's transaction; the item id."""
    kind, payload = encode(event)
    return InboxRepository(uow.session).add(owner_id, bot_id, kind, payload).id


def pending(platform: Platform, *, bot_ids: Iterable[int] | None = None, limit: int = 100) -> list[InboxItem]:
    with platform.uow() as uow:
        return [InboxItem(r.id, r.bot_id, decode(r.kind, r.payload))
                for r in InboxRepository(uow.session).pending(bot_ids=bot_ids, limit=limit)]


def mark_delivered(platform: Platform, item_ids: Iterable[int]) -> None:
    with platform.uow() as uow:
        repo = InboxRepository(uow.session)
        for item_id in item_ids:
            repo.mark_delivered(item_id)


async def deliver_pending(platform: Platform, deliver: Callable[[str, Event], Awaitable[Any]], *,
                          bot_ids: Iterable[int] | None = None, limit: int = 100) -> int:
    """Hand every waiting item to ``deliver(bot id as text, event)``, oldest first; how many."""
    done = 0
    for item in pending(platform, bot_ids=bot_ids, limit=limit):
        await deliver(str(item.bot_id), item.event)
        mark_delivered(platform, [item.id])
        done += 1
    return done
