"""Kill switches: stop every bot of an account, of a user, or of the whole instance at once.

Not a revocation: keys stay linked and deals stay on the books, so the user can look,
then start again. In one transaction the bots are marked ``stopped`` with the reason
``KILL_REASON`` *and* every order of theirs not yet final (open, partly filled, pending)
is marked ``CANCEL_REQUESTED``: the order manager's durable cancel (engine/orders.py).
So the cancel is part of the kill, not something an engine has to notice: whichever
process owns the account next (the running engine's next poll, an engine restarted
before it saw the kill, the worker a scale-out partition moved to) sends the cancels
while the exchange lists the orders open, and never sends a pending one. The engine's
sync pass (services/engine_sync.py) also cancels at once when it sees the status change,
and starts an account that has no running bot but cancels outstanding. To also destroy
the keys, revoke the account, or run ``sealbot panic``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sealbot import audit
from sealbot.domain import OrderStatus
from sealbot.engine.orders import CANCEL_REQUESTED
from sealbot.services.platform import Platform
from sealbot.store.models import Bot, OrderRow

KILL_REASON = "kill switch"
_LIVE = ("running", "paused")
_NOT_FINAL = tuple(s.value for s in OrderStatus if not s.is_final)


@dataclass(frozen=True, slots=True)
class KillResult:
    scope: str  # "account:<id>", "user:<id>" or "instance"
    stopped_bots: list[int]
    cancel_requested: int = 0  # their orders marked for cancelling (sent by the account's engine)


def request_cancels(session: Session, bot_ids: list[int]) -> int:
    """Mark every order of ``bot_ids`` not yet final for cancelling (the order manager's
    durable cancel), in the caller's transaction; the account's engine sends the cancels.
    Returns how many were marked."""
    if not bot_ids:
        return 0
    marked = cast("sa.CursorResult[Any]", session.execute(
        sa.update(OrderRow).where(OrderRow.bot_id.in_(bot_ids), OrderRow.status.in_(_NOT_FINAL))
        .values(last_error=CANCEL_REQUESTED).execution_options(synchronize_session=False)))
    return marked.rowcount


def kill_switch(platform: Platform, actor_id: int, *, owner_id: int | None, account_id: int | None = None,
                ) -> KillResult:
    """Stop the running and paused bots of ``owner_id`` (all of them, or those of one of
    their accounts), or, with ``owner_id=None``, of every user (callers check the actor is
    an admin). An account that is not the owner's is ``NotFound``."""
    with platform.uow() as uow:
        where: list[sa.ColumnElement[bool]] = [Bot.status.in_(_LIVE)]
        if owner_id is None:
            scope = "instance"
        elif account_id is None:
            scope = f"user:{owner_id}"
            where.append(Bot.owner_id == owner_id)
        else:
            uow.accounts.get(owner_id, account_id)  # NotFound for another user's account
            scope = f"account:{account_id}"
            where += [Bot.owner_id == owner_id, Bot.account_id == account_id]
        bots = list(uow.session.scalars(sa.select(Bot).where(*where).order_by(Bot.id)))
        for bot in bots:
            bot.status, bot.pause_reason = "stopped", KILL_REASON
        uow.session.flush()
        ids = [b.id for b in bots]
        cancels = request_cancels(uow.session, ids)  # commits with the stop: no engine can miss it
        audit.record(uow.session, actor=f"user:{actor_id}", action="kill_switch.engaged", subject=scope,
                     details={"bots": ids, "cancel_requested": cancels})
        return KillResult(scope, ids, cancels)
