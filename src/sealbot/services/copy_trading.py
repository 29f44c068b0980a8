"""Copy trading: one signal or DCA bot config run on several of the user's accounts.

A *copy set* (``bot_groups``) holds the config as written once; each member is an
ordinary bot on one account (so the engine, the order manager and the guard treat it
like any other bot) whose sizes are the group's scaled for that account:

* ``multiplier`` scales every size field (signal bot: ``amount``, ``max_position``;
  DCA bot: ``base_order_volume``, ``safety_order_volume``, each custom safety step's
  ``volume``), or
* ``base_size`` fixes the entry size (``amount`` / ``base_order_volume``) and scales the
  other sizes by the same ratio, so the DCA ladder keeps its shape.

Scaled sizes are rounded down to 8 decimals (never more than asked for). Members are
created, started, paused and stopped together; one webhook secret (route ``copy-<id>``)
fans a signal out to every running member, with the signal's own amount scaled the
same way (an amount in percent of balance is already per account and is left as is).

Each member trades under its own account's guard limits (``account_guard_limits``, set
through ``services.guard_limits``, read by the engine into ``GuardPolicy.accounts``) on
top of the user's: one account refusing an order does not stop the others.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any, Final

from sealbot import audit
from sealbot.bots.registry import parse_config, stored_config
from sealbot.bots.signals import hash_secret
from sealbot.domain import AmountType, SignalReceived
from sealbot.domain.errors import InvalidConfig, NotFound
from sealbot.services import inbox
from sealbot.services.platform import Platform
from sealbot.store import UnitOfWork
from sealbot.store.models import BotGroup, BotGroupMember
from sealbot.store.repositories.copysets import BotGroupRepository

COPYABLE: Final = ("signal", "dca")
ROUTE_PREFIX: Final = "copy-"
MAX_MEMBERS: Final = 50
MAX_MULTIPLIER: Final = Decimal(1000)
SIZE_QUANTUM: Final = Decimal("1E-8")
_ENTRY: Final = {"signal": "amount", "dca": "base_order_volume"}


@dataclass(frozen=True, slots=True)
class MemberSpec:
    """One account of a copy set and its sizing (neither given: the group's sizes)."""

    account_id: int
    multiplier: Decimal | None = None
    base_size: Decimal | None = None


@dataclass(frozen=True, slots=True)
class MemberView:
    bot_id: int
    account_id: int
    multiplier: Decimal | None
    base_size: Decimal | None
    status: str
    pause_reason: str | None
    config: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CopySetView:
    id: int
    kind: str
    name: str
    config: Mapping[str, Any]
    members: list[MemberView]
    has_webhook_secret: bool

    @property
    def webhook_route(self) -> str:
        """What a signal body names as its bot (``bot_uuid`` or ``bot_id``)."""
        return f"{ROUTE_PREFIX}{self.id}"


# --- pure sizing ---


def _dec(value: object, field: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidConfig(field, "is not a number") from None
    if not number.is_finite():
        raise InvalidConfig(field, "is not a finite number")
    return number


def _scaled(value: object, factor: Decimal, field: str) -> str:
    scaled = (_dec(value, field) * factor).quantize(SIZE_QUANTUM, rounding=ROUND_DOWN)
    if scaled <= 0:
        raise InvalidConfig(field, f"scaled by {factor} rounds down to zero")
    return format(scaled, "f")


def sizing_factor(kind: str, config: Mapping[str, Any], *, multiplier: Decimal | None = None,
                  base_size: Decimal | None = None, field: str = "sizing") -> Decimal:
    """The factor a member applies to every size: ``multiplier``, or ``base_size``
    divided by the config's entry size, or 1."""
    if multiplier is not None and base_size is not None:
        raise InvalidConfig(field, "give multiplier or base_size, not both")
    if multiplier is not None:
        if not 0 < multiplier <= MAX_MULTIPLIER:
            raise InvalidConfig(f"{field}.multiplier", f"must be above 0 and at most {MAX_MULTIPLIER}")
        return multiplier
    if base_size is not None:
        if base_size <= 0:
            raise InvalidConfig(f"{field}.base_size", "must be positive")
        entry = _dec(config.get(_ENTRY[kind]), f"config.{_ENTRY[kind]}")
        if entry <= 0:
            raise InvalidConfig(f"config.{_ENTRY[kind]}", "must be positive")
        return base_size / entry
    return Decimal(1)


def sized_config(kind: str, config: Mapping[str, Any], *, multiplier: Decimal | None = None,
                 base_size: Decimal | None = None, field: str = "sizing") -> dict[str, Any]:
    """``config`` with its size fields scaled for one member (see the module docstring)."""
    if kind not in COPYABLE:
        raise InvalidConfig("kind", f"copy sets run {' or '.join(COPYABLE)} bots")
    factor = sizing_factor(kind, config, multiplier=multiplier, base_size=base_size, field=field)
    out = dict(config)
    if kind == "signal":
        out["amount"] = _scaled(out.get("amount"), factor, "config.amount")
        if out.get("max_position") is not None:
            out["max_position"] = _scaled(out["max_position"], factor, "config.max_position")
    else:
        out["base_order_volume"] = _scaled(out.get("base_order_volume"), factor, "config.base_order_volume")
        if out.get("safety_order_volume") not in (None, 0, "0"):
            out["safety_order_volume"] = _scaled(out["safety_order_volume"], factor, "config.safety_order_volume")
        steps = out.get("custom_safety_steps")
        if isinstance(steps, list):
            out["custom_safety_steps"] = [
                {**step, "volume": _scaled(step.get("volume"), factor, f"config.custom_safety_steps.{i}.volume")}
                if isinstance(step, Mapping) else step
                for i, step in enumerate(steps)]
    if base_size is not None:
        out[_ENTRY[kind]] = format(base_size, "f")  # exactly what the user asked for, not a rounded ratio product
    return out


def member_signal(signal: SignalReceived, factor: Decimal) -> SignalReceived:
    """The signal as one member receives it: a quote or base amount scaled by the
    member's factor (rounded down); a percent-of-balance amount is left as it is."""
    if signal.amount is None or signal.amount_type is AmountType.PERCENT_OF_BALANCE or factor == 1:
        return signal
    return replace(signal, amount=(signal.amount * factor).quantize(SIZE_QUANTUM, rounding=ROUND_DOWN))


# --- use cases ---


def _view(uow: UnitOfWork, owner_id: int, group: BotGroup) -> CopySetView:
    repo = BotGroupRepository(uow.session)
    members = []
    for m in repo.members(owner_id, group.id):
        bot = uow.bots.get(owner_id, m.bot_id)
        members.append(MemberView(m.bot_id, m.account_id, m.multiplier, m.base_size, bot.status, bot.pause_reason,
                                  dict(bot.config)))
    return CopySetView(group.id, group.kind, group.name, dict(group.config), members, bool(group.webhook_secret_hash))


def _add_member(uow: UnitOfWork, owner_id: int, group: BotGroup, spec: MemberSpec, field: str,
                status: str) -> BotGroupMember:
    account = uow.accounts.get(owner_id, spec.account_id)  # NotFound for another user's account
    if account.status == "revoked":
        raise InvalidConfig(f"{field}.account_id", "this account's key was revoked")
    config = sized_config(group.kind, group.config, multiplier=spec.multiplier, base_size=spec.base_size,
                          field=field)
    bot = uow.bots.add(owner_id, group.kind, f"{group.name} · {account.label}"[:120], config, account_id=account.id)
    uow.bots.update(owner_id, bot.id, config=stored_config(group.kind, config, bot.id))
    if status != "stopped":
        uow.bots.set_status(owner_id, bot.id, status)
    return BotGroupRepository(uow.session).add_member(owner_id, group.id, bot.id, account.id,
                                                      multiplier=spec.multiplier, base_size=spec.base_size)


def create_copy_set(platform: Platform, owner_id: int, kind: str, name: str, config: Mapping[str, Any],
                    members: Sequence[MemberSpec], *, start: bool = False) -> CopySetView:
    """Validate the config and every member's sized config, then create the group and
    one bot per account in one transaction (all or nothing)."""
    if kind not in COPYABLE:
        raise InvalidConfig("kind", f"copy sets run {' or '.join(COPYABLE)} bots")
    if not name.strip() or len(name) > 100:
        raise InvalidConfig("name", "must be 1 to 100 characters")
    if not 1 <= len(members) <= MAX_MEMBERS:
        raise InvalidConfig("members", f"name 1 to {MAX_MEMBERS} accounts")
    seen: set[int] = set()
    for i, m in enumerate(members):
        if m.account_id in seen:
            raise InvalidConfig(f"members.{i}.account_id", "appears twice: one member per account")
        seen.add(m.account_id)
    parse_config(kind, {**config, "bot_id": "0"})
    with platform.uow() as uow:
        group = BotGroupRepository(uow.session).add(owner_id, kind, name.strip(), dict(config))
        for i, m in enumerate(members):
            _add_member(uow, owner_id, group, m, f"members.{i}", "running" if start else "stopped")
        audit.record(uow.session, actor=f"user:{owner_id}", action="copyset.created", subject=f"copyset:{group.id}",
                     details={"kind": kind, "accounts": sorted(seen), "started": start})
        return _view(uow, owner_id, group)


def add_member(platform: Platform, owner_id: int, group_id: int, spec: MemberSpec) -> CopySetView:
    """One more account; the new member starts if the set's members are running."""
    with platform.uow() as uow:
        group = BotGroupRepository(uow.session).get(owner_id, group_id)
        current = _view(uow, owner_id, group)
        if any(m.account_id == spec.account_id for m in current.members):
            raise InvalidConfig("account_id", "this account is already a member")
        if len(current.members) >= MAX_MEMBERS:
            raise InvalidConfig("members", f"a copy set has at most {MAX_MEMBERS} accounts")
        running = any(m.status == "running" for m in current.members)
        member = _add_member(uow, owner_id, group, spec, "member", "running" if running else "stopped")
        audit.record(uow.session, actor=f"user:{owner_id}", action="copyset.member_added",
                     subject=f"copyset:{group_id}", details={"account_id": spec.account_id, "bot_id": member.bot_id})
        return _view(uow, owner_id, group)


def remove_member(platform: Platform, owner_id: int, group_id: int, account_id: int) -> CopySetView:
    """Take one account out of the set and delete its member bot (which must not be running)."""
    with platform.uow() as uow:
        repo = BotGroupRepository(uow.session)
        group = repo.get(owner_id, group_id)
        member = next((m for m in repo.members(owner_id, group_id) if m.account_id == account_id), None)
        if member is None:
            raise NotFound("copy set member", account_id)
        if uow.bots.get(owner_id, member.bot_id).status == "running":
            raise InvalidConfig("status", "stop or pause the copy set before removing a member")
        uow.bots.delete(owner_id, member.bot_id)
        audit.record(uow.session, actor=f"user:{owner_id}", action="copyset.member_removed",
                     subject=f"copyset:{group_id}", details={"account_id": account_id, "bot_id": member.bot_id})
        return _view(uow, owner_id, group)


def edit_copy_set(platform: Platform, owner_id: int, group_id: int, *, name: str | None = None,
                  config: Mapping[str, Any] | None = None) -> CopySetView:
    """Rename the set, or give it a new config: every member's config is re-sized from it
    (with the member's own sizing). No member may be running; all are checked first."""
    if name is not None and (not name.strip() or len(name) > 100):
        raise InvalidConfig("name", "must be 1 to 100 characters")
    with platform.uow() as uow:
        repo = BotGroupRepository(uow.session)
        group = repo.get(owner_id, group_id)
        members = repo.members(owner_id, group_id)
        if config is not None:
            parse_config(group.kind, {**config, "bot_id": "0"})
            if any(uow.bots.get(owner_id, m.bot_id).status == "running" for m in members):
                raise InvalidConfig("status", "stop or pause the copy set before changing its settings")
            for i, m in enumerate(members):
                sized = sized_config(group.kind, config, multiplier=m.multiplier, base_size=m.base_size,
                                     field=f"members.{i}")
                uow.bots.update(owner_id, m.bot_id, config=stored_config(group.kind, sized, m.bot_id))
            group.config = dict(config)
        if name is not None:
            group.name = name.strip()
        audit.record(uow.session, actor=f"user:{owner_id}", action="copyset.edited", subject=f"copyset:{group_id}",
                     details={"fields": sorted(k for k, v in (("name", name), ("config", config)) if v is not None)})
        return _view(uow, owner_id, group)


def list_copy_sets(platform: Platform, owner_id: int) -> list[CopySetView]:
    with platform.uow() as uow:
        return [_view(uow, owner_id, g) for g in BotGroupRepository(uow.session).list(owner_id)]


def get_copy_set(platform: Platform, owner_id: int, group_id: int) -> CopySetView:
    with platform.uow() as uow:
        return _view(uow, owner_id, BotGroupRepository(uow.session).get(owner_id, group_id))


def set_copy_set_status(platform: Platform, owner_id: int, group_id: int, status: str,
                        reason: str | None = None) -> CopySetView:
    """Start (``running``), pause or stop every member together. A member the guard or
    the watchdog paused is resumed by ``running`` too: the user asked for it."""
    if status not in {"running", "paused", "stopped"}:
        raise InvalidConfig("status", f"{status!r} is not running, paused or stopped")
    with platform.uow() as uow:
        group = BotGroupRepository(uow.session).get(owner_id, group_id)
        for m in BotGroupRepository(uow.session).members(owner_id, group_id):
            uow.bots.set_status(owner_id, m.bot_id, status, pause_reason=reason)
        audit.record(uow.session, actor=f"user:{owner_id}", action=f"copyset.{status}", subject=f"copyset:{group_id}",
                     details={"reason": reason} if reason else {})
        return _view(uow, owner_id, group)


def delete_copy_set(platform: Platform, owner_id: int, group_id: int) -> None:
    """Delete the set and its member bots; every member must be stopped first."""
    with platform.uow() as uow:
        repo = BotGroupRepository(uow.session)
        repo.get(owner_id, group_id)
        members = repo.members(owner_id, group_id)
        if any(uow.bots.get(owner_id, m.bot_id).status == "running" for m in members):
            raise InvalidConfig("status", "stop the copy set before deleting it")
        for m in members:
            uow.bots.delete(owner_id, m.bot_id)
        repo.delete(owner_id, group_id)
        audit.record(uow.session, actor=f"user:{owner_id}", action="copyset.deleted", subject=f"copyset:{group_id}",
                     details={"bots": [m.bot_id for m in members]})


def new_copy_set_webhook_secret(platform: Platform, owner_id: int, group_id: int) -> str:
    """A fresh 192-bit secret for the set's webhook (returned once; only its hash is kept)."""
    secret = secrets.token_urlsafe(24)
    with platform.uow() as uow:
        group = BotGroupRepository(uow.session).get(owner_id, group_id)
        group.webhook_secret_hash = hash_secret(secret)
        audit.record(uow.session, actor=f"user:{owner_id}", action="copyset.webhook_secret_set",
                     subject=f"copyset:{group_id}", details={})
    return secret


@dataclass(frozen=True, slots=True)
class FannedOut:
    bot_id: int
    inbox_id: int | None  # None: this member had already seen the signal


def fan_out(uow: UnitOfWork, group: BotGroup, signal: SignalReceived) -> list[FannedOut]:
    """Queue ``signal`` for every running member (scaled per member) in the caller's
    transaction; members that are not running are skipped, repeats are no-ops."""
    repo = BotGroupRepository(uow.session)
    out: list[FannedOut] = []
    for m in repo.members(group.owner_id, group.id):
        bot = uow.bots.get(group.owner_id, m.bot_id)
        if bot.status != "running":
            continue
        if not uow.signals.add_if_new(group.owner_id, bot.id, signal.signal_id, status="accepted"):
            out.append(FannedOut(bot.id, None))
            continue
        factor = sizing_factor(group.kind, group.config, multiplier=m.multiplier, base_size=m.base_size)
        out.append(FannedOut(bot.id, inbox.post(uow, group.owner_id, bot.id, member_signal(signal, factor))))
    return out


def copy_set_id(route: str) -> int | None:
    """The set's id when a signal's route is ``copy-<id>``."""
    if not route.startswith(ROUTE_PREFIX):
        return None
    digits = route[len(ROUTE_PREFIX):]
    return int(digits) if digits.isdigit() and len(digits) < 18 else None
