"""The pre-trade limits users store: their own, for all their accounts, and each
account's, applied on top (an order must pass both; see docs/engine.md, Guard).

Tightening a limit is the first thing a user does who suspects their key leaked, so
the engine re-reads these rows on every sync pass (the embedded engine's and each
scale-out worker's, about once a second) rather than at start only: a stored limit
judges the next order. Every change is audited with the limits as stored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sealbot import audit
from sealbot.domain.errors import InvalidConfig
from sealbot.domain.money import MAX_AMOUNT, MAX_PERCENT, dec, out_of_bounds
from sealbot.engine.guard import GuardLimits
from sealbot.services.platform import Platform
from sealbot.store.repositories.copysets import GuardLimitsRepository
from sealbot.store.repositories.guard_limits import UserGuardLimitsRepository

LIMIT_FIELDS: Final = ("max_deviation_pct", "max_order_notional", "max_daily_notional", "allowed_pairs",
                       "min_quote_volume_24h")
_ALWAYS_ON: Final = ("max_deviation_pct", "min_quote_volume_24h")  # what makes the pump-a-coin pattern fail


def validate_limits(limits: Mapping[str, Any]) -> dict[str, object]:
    """``GuardLimits`` from user input, each bad field named; returned in stored form.
    Settings left out take the engine's defaults."""
    for key, value in limits.items():
        field = f"limits.{key}"
        if key not in LIMIT_FIELDS:
            raise InvalidConfig(field, f"unknown setting (known: {', '.join(LIMIT_FIELDS)})")
        if key == "allowed_pairs":
            if value is not None and not isinstance(value, list):
                raise InvalidConfig(field, "must be a list of pairs or null")
        elif value is None:
            if key in _ALWAYS_ON:
                raise InvalidConfig(field, "cannot be switched off")
        else:
            _check_number(key, value)
        try:
            GuardLimits.from_dict({key: value})
        except ValueError as exc:
            raise InvalidConfig(field, str(exc)) from None
    normalized = GuardLimits.from_dict(dict(limits)).to_dict()
    return {k: v for k, v in normalized.items() if k in limits}


def _check_number(key: str, value: object) -> None:
    try:
        number = dec(str(value))
    except ValueError:
        raise InvalidConfig(f"limits.{key}", "is not a finite number") from None
    if key == "max_deviation_pct" and number <= 0:
        raise InvalidConfig(f"limits.{key}", "must be positive")
    # The same bounds as every bot config's amounts and percentages (domain.money).
    reason = out_of_bounds(number, MAX_PERCENT if key == "max_deviation_pct" else MAX_AMOUNT)
    if reason:
        raise InvalidConfig(f"limits.{key}", reason)
    if number < 0:
        raise InvalidConfig(f"limits.{key}", "must not be negative")


# --- the user's own limits (all their accounts) ---


def set_user_guard_limits(platform: Platform, user_id: int, limits: Mapping[str, Any]) -> dict[str, object]:
    """Store the user's own limits, replacing what was stored; the engine applies them
    to the next order of any of the user's accounts."""
    stored = validate_limits(limits)
    with platform.uow() as uow:
        UserGuardLimitsRepository(uow.session).put(user_id, stored)
        audit.record(uow.session, actor=f"user:{user_id}", action="user.guard_limits_set",
                     subject=f"user:{user_id}", details={"limits": stored})
    return stored


def user_guard_limits(platform: Platform, user_id: int) -> dict[str, Any] | None:
    with platform.uow() as uow:
        return UserGuardLimitsRepository(uow.session).get(user_id)


def clear_user_guard_limits(platform: Platform, user_id: int) -> None:
    """Back to the engine's defaults."""
    with platform.uow() as uow:
        UserGuardLimitsRepository(uow.session).clear(user_id)
        audit.record(uow.session, actor=f"user:{user_id}", action="user.guard_limits_cleared",
                     subject=f"user:{user_id}", details={})


# --- an account's own limits (on top of the user's) ---


def set_account_guard_limits(platform: Platform, owner_id: int, account_id: int,
                             limits: Mapping[str, Any]) -> dict[str, object]:
    """Store the account's own limits, applied on top of the user's."""
    stored = validate_limits(limits)
    with platform.uow() as uow:
        GuardLimitsRepository(uow.session).put(owner_id, account_id, stored)
        audit.record(uow.session, actor=f"user:{owner_id}", action="account.guard_limits_set",
                     subject=f"account:{account_id}", details={"limits": stored})
    return stored


def account_guard_limits(platform: Platform, owner_id: int, account_id: int) -> dict[str, Any] | None:
    with platform.uow() as uow:
        return GuardLimitsRepository(uow.session).get(owner_id, account_id)


def clear_account_guard_limits(platform: Platform, owner_id: int, account_id: int) -> None:
    with platform.uow() as uow:
        GuardLimitsRepository(uow.session).clear(owner_id, account_id)
        audit.record(uow.session, actor=f"user:{owner_id}", action="account.guard_limits_cleared",
                     subject=f"account:{account_id}", details={})
