"""Guard limits as users stored them, read into the engine's ``GuardPolicy``: each user's
own (``user_guard_limits``) and each account's (``account_guard_limits``). Kept apart
from ``guard`` so the guard stays pure."""

from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy.orm import Session, sessionmaker

from sealbot.engine.guard import GuardLimits
from sealbot.store import UnitOfWork
from sealbot.store.repositories.copysets import GuardLimitsRepository
from sealbot.store.repositories.guard_limits import UserGuardLimitsRepository

log = logging.getLogger(__name__)


def load_account_limits(session_factory: sessionmaker[Session],
                        defaults: GuardLimits | None = None) -> dict[str, GuardLimits]:
    """Every stored account's limits by account id (text, as the runner keys accounts);
    a setting the row leaves out takes its value from ``defaults`` (the engine's). A row
    that no longer parses is skipped with a warning; the user limits still apply."""
    with UnitOfWork(session_factory) as uow:
        rows = GuardLimitsRepository(uow.session).all()
    return _parsed("account", rows, defaults)


def load_user_limits(session_factory: sessionmaker[Session],
                     defaults: GuardLimits | None = None) -> dict[str, GuardLimits]:
    """Every stored user's own limits by user id (text, as ``AccountRecord.user``); a
    setting the row leaves out takes its value from ``defaults``. A row that no longer
    parses is skipped with a warning: that user is guarded by the defaults."""
    with UnitOfWork(session_factory) as uow:
        rows = UserGuardLimitsRepository(uow.session).all()
    return _parsed("user", rows, defaults)


def _parsed(kind: str, rows: dict[int, dict[str, object]], defaults: GuardLimits | None) -> dict[str, GuardLimits]:
    base = defaults or GuardLimits()
    limits: dict[str, GuardLimits] = {}
    for ident, data in rows.items():
        try:
            parsed = GuardLimits.from_dict(data)
            limits[str(ident)] = replace(base, **{k: getattr(parsed, k) for k in data})
        except (ValueError, ArithmeticError) as exc:
            log.warning("%s %s: stored guard limits ignored: %s", kind, ident, exc)
    return limits
