"""Per-account guard limits as the user stored them (``account_guard_limits``), read
into the engine's ``GuardPolicy``. Kept apart from ``guard`` so the guard stays pure."""

from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy.orm import Session, sessionmaker

from sealbot.engine.guard import GuardLimits
from sealbot.store import UnitOfWork
from sealbot.store.repositories.copysets import GuardLimitsRepository

log = logging.getLogger(__name__)


def load_account_limits(session_factory: sessionmaker[Session],
                        defaults: GuardLimits | None = None) -> dict[str, GuardLimits]:
    """Every stored account's limits by account id (text, as the runner keys accounts);
    a setting the row leaves out takes its value from ``defaults`` (the engine's). A row
    that no longer parses is skipped with a warning; the user limits still apply."""
    base = defaults or GuardLimits()
    with UnitOfWork(session_factory) as uow:
        rows = GuardLimitsRepository(uow.session).all()
    limits: dict[str, GuardLimits] = {}
    for account_id, data in rows.items():
        try:
            parsed = GuardLimits.from_dict(data)
            limits[str(account_id)] = replace(base, **{k: getattr(parsed, k) for k in data})
        except (ValueError, ArithmeticError) as exc:
            log.warning("account %s: stored guard limits ignored: %s", account_id, exc)
    return limits
