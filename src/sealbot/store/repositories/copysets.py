"""Copy sets (a bot config run on several accounts) and per-account guard limits,
scoped to their owner: a member can only be one of the owner's own accounts and bots."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from sealbot.domain.errors import NotFound
from sealbot.store.models import AccountGuardLimits, Bot, BotGroup, BotGroupMember, BotGroupWebhook, ExchangeAccount
from sealbot.store.repositories._base import Repository
from sealbot.store.types import utcnow


class BotGroupRepository(Repository):
    def add(self, owner_id: int, kind: str, name: str, config: Mapping[str, Any]) -> BotGroup:
        group = BotGroup(owner_id=owner_id, kind=kind, name=name, config=dict(config))
        self.session.add(group)
        self.session.flush()
        return group

    def get(self, owner_id: int, group_id: int) -> BotGroup:
        return self._owned(BotGroup, owner_id, group_id, "bot group")

    def list(self, owner_id: int) -> builtins.list[BotGroup]:
        return list(self.session.scalars(sa.select(BotGroup).where(BotGroup.owner_id == owner_id)
                                         .order_by(BotGroup.id)))

    def add_member(self, owner_id: int, group_id: int, bot_id: int, account_id: int, *,
                   multiplier: Decimal | None, base_size: Decimal | None) -> BotGroupMember:
        self.get(owner_id, group_id)
        self._owned(Bot, owner_id, bot_id, "bot")
        self._owned(ExchangeAccount, owner_id, account_id, "account")
        member = BotGroupMember(bot_id=bot_id, group_id=group_id, owner_id=owner_id, account_id=account_id,
                                multiplier=multiplier, base_size=base_size)
        self.session.add(member)
        self.session.flush()
        return member

    def members(self, owner_id: int, group_id: int) -> builtins.list[BotGroupMember]:
        stmt = (sa.select(BotGroupMember).where(BotGroupMember.owner_id == owner_id,
                                                BotGroupMember.group_id == group_id)
                .order_by(BotGroupMember.account_id))
        return list(self.session.scalars(stmt))

    def member_of(self, owner_id: int, bot_id: int) -> BotGroupMember | None:
        return self.session.scalar(sa.select(BotGroupMember).where(BotGroupMember.owner_id == owner_id,
                                                                   BotGroupMember.bot_id == bot_id))

    def delete(self, owner_id: int, group_id: int) -> None:
        self.session.delete(self.get(owner_id, group_id))
        self.session.flush()

    def put_policy(self, owner_id: int, group_id: int, *, allowed_ips: builtins.list[str] | None,
                   max_per_minute: int) -> BotGroupWebhook:
        self.get(owner_id, group_id)
        row = self.session.get(BotGroupWebhook, group_id)
        if row is None:
            row = BotGroupWebhook(group_id=group_id, owner_id=owner_id)
            self.session.add(row)
        row.allowed_ips, row.max_per_minute = allowed_ips, max_per_minute
        self.session.flush()
        return row

    # -- system-wide reads for the webhook (authenticated by the group's secret first) --
    def any_group(self, group_id: int) -> BotGroup | None:
        return self.session.get(BotGroup, group_id)

    def policy(self, group_id: int) -> BotGroupWebhook | None:
        return self.session.get(BotGroupWebhook, group_id)


class GuardLimitsRepository(Repository):
    def get(self, owner_id: int, account_id: int) -> dict[str, Any] | None:
        self._owned(ExchangeAccount, owner_id, account_id, "account")
        row = self.session.get(AccountGuardLimits, account_id)
        return dict(row.limits) if row is not None else None

    def put(self, owner_id: int, account_id: int, limits: Mapping[str, Any]) -> dict[str, Any]:
        self._owned(ExchangeAccount, owner_id, account_id, "account")
        row = self.session.get(AccountGuardLimits, account_id)
        if row is None:
            row = AccountGuardLimits(account_id=account_id, owner_id=owner_id, limits=dict(limits))
            self.session.add(row)
        else:
            row.limits, row.updated_at = dict(limits), utcnow()
        self.session.flush()
        return dict(row.limits)

    def clear(self, owner_id: int, account_id: int) -> None:
        self._owned(ExchangeAccount, owner_id, account_id, "account")
        row = self.session.get(AccountGuardLimits, account_id)
        if row is None:
            raise NotFound("guard limits", account_id)
        self.session.delete(row)
        self.session.flush()

    # -- system-wide read for the engine --
    def all(self) -> dict[int, dict[str, Any]]:
        return {r.account_id: dict(r.limits) for r in self.session.scalars(sa.select(AccountGuardLimits))}
