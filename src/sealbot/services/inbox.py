"""The bot inbox: events for a bot that come from outside the engine (webhook signals,
a user's close-at-market or add-funds) wait in the ``bot_inbox`` table until the
engine takes them.

The embedded engine reads it through ``InboxSource``, the message source of its
in-process transport (``engine.scaleout.local``): each item becomes a message with id
``inbox-<item id>`` for its bot's account, and is marked delivered only once the worker
committed it (a crash in between delivers it again; the worker's ledger applies it once).
The scaled-out deployment's ``InboxRelay`` (services/scaleout.py) publishes the same
messages to RabbitMQ instead. ``deliver_pending`` hands items to any ``(bot id, event)``
coroutine, marking each delivered after it returned.

``subscribe`` registers a callback run after every commit that posted an item, in the
committing thread: an engine in the same process (``sealbot serve``, ``sealbot demo``)
reads the inbox at once instead of on its next poll."""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sealbot.domain import AddFunds, AmountType, CloseAtMarket, Event, Pair, SignalAction, SignalReceived
from sealbot.engine.scaleout.broker import Signal
from sealbot.services.platform import Platform
from sealbot.store import UnitOfWork
from sealbot.store.models import Bot
from sealbot.store.repositories.web import InboxRepository

log = logging.getLogger(__name__)
MESSAGE_PREFIX = "inbox-"  # an item's message id: inbox-<item id> (the ledger de-duplicates by it)


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


_listeners: list[Callable[[], None]] = []
_listeners_lock = threading.Lock()


def subscribe(listener: Callable[[], None]) -> Callable[[], None]:
    """Call ``listener()`` after each commit that posted an item (in the committing
    thread: it must only hand over, e.g. ``loop.call_soon_threadsafe``); returns the
    function that unsubscribes it."""
    with _listeners_lock:
        _listeners.append(listener)

    def unsubscribe() -> None:
        with _listeners_lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return unsubscribe


def _posted(_session: Session) -> None:
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener()
        except Exception:  # a listener's failure must not fail the request that posted
            log.exception("inbox listener failed")


def post(uow: UnitOfWork, owner_id: int, bot_id: int, event: SignalReceived | CloseAtMarket | AddFunds) -> int:
    """Queue ``event`` for the bot inside the caller's transaction; the item id. The
    subscribers hear of it once that transaction commits."""
    kind, payload = encode(event)
    item = InboxRepository(uow.session).add(owner_id, bot_id, kind, payload).id
    if not sa.event.contains(uow.session, "after_commit", _posted):
        sa.event.listen(uow.session, "after_commit", _posted, once=True)
    return item


class InboxSource:
    """The bot inbox as the embedded engine's message source (``engine.scaleout.local``):
    pending items, oldest first, as messages for their bots' accounts."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def pending(self, limit: int) -> Sequence[Signal]:
        with self.platform.uow() as uow:
            rows = InboxRepository(uow.session).pending(limit=limit)
            if not rows:
                return []
            accounts = {b.id: b.account_id for b in uow.session.scalars(
                sa.select(Bot).where(Bot.id.in_({r.bot_id for r in rows})))}
            return [Signal(f"{MESSAGE_PREFIX}{r.id}", str(accounts[r.bot_id]), str(r.bot_id), r.kind, dict(r.payload),
                           None, _utc(r.created_at)) for r in rows if accounts.get(r.bot_id) is not None]

    def acknowledge(self, message_id: str) -> None:
        if message_id.startswith(MESSAGE_PREFIX):
            mark_delivered(self.platform, [int(message_id.removeprefix(MESSAGE_PREFIX))])


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


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
