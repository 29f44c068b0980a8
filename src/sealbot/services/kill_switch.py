"""Kill switches: stop every bot of an account, of a user, or of the whole instance at once.

Not a revocation: keys stay linked and deals stay on the books, so the user can look,
then start again. The bots are marked ``stopped`` with the reason ``KILL_REASON`` in one
transaction; the engine (services/engine_host.py) sees the reason on its next pass and
cancels those bots' open orders on the exchange. To also destroy the keys, revoke the
account, or run ``sealbot panic``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from sealbot import audit
from sealbot.services.platform import Platform
from sealbot.store.models import Bot

KILL_REASON = "kill switch"
_LIVE = ("running", "paused")


@dataclass(frozen=True, slots=True)
class KillResult:
    scope: str  # "account:<id>", "user:<id>" or "instance"
    stopped_bots: list[int]


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
        audit.record(uow.session, actor=f"user:{actor_id}", action="kill_switch.engaged", subject=scope,
                     details={"bots": [b.id for b in bots]})
        return KillResult(scope, [b.id for b in bots])
