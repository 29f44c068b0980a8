"""Rows the web tier needs: sessions, API tokens, recovery codes, login throttling,
the bot inbox and per-bot webhook policy. Every user-owned read takes the owner."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from sealbot.domain.errors import NotFound
from sealbot.store.models import (
    ApiToken,
    AuditRecord,
    Bot,
    BotInboxRow,
    BotWebhook,
    IpThrottle,
    LoginThrottle,
    RecoveryCode,
    WebSession,
)
from sealbot.store.repositories._base import Repository
from sealbot.store.types import utcnow


class SessionRepository(Repository):
    def add(self, user_id: int, token_hash: str, expires_at: datetime, *, mfa_verified: bool,
            ip: str | None, user_agent: str | None) -> WebSession:
        row = WebSession(user_id=user_id, token_hash=token_hash, expires_at=expires_at, mfa_verified=mfa_verified,
                         ip=ip, user_agent=(user_agent or "")[:200] or None)
        self.session.add(row)
        self.session.flush()
        return row

    def by_hash(self, token_hash: str) -> WebSession | None:
        """The live session with this token hash (not revoked; expiry is the caller's check)."""
        return self.session.scalar(sa.select(WebSession).where(WebSession.token_hash == token_hash,
                                                                WebSession.revoked_at.is_(None)))

    def get(self, user_id: int, session_id: int) -> WebSession:
        row: WebSession = self._owned_by_user(WebSession, user_id, session_id, "session")
        return row

    def list(self, user_id: int) -> builtins.list[WebSession]:
        return list(self.session.scalars(sa.select(WebSession).where(
            WebSession.user_id == user_id, WebSession.revoked_at.is_(None)).order_by(WebSession.id.desc())))

    def revoke_all(self, user_id: int, *, except_id: int | None = None, at: datetime | None = None) -> int:
        n = 0
        for row in self.list(user_id):
            if row.id != except_id:
                row.revoked_at = at or utcnow()
                n += 1
        return n

    def _owned_by_user(self, model: Any, user_id: int, ident: int, kind: str) -> Any:
        row = self.session.scalar(sa.select(model).where(model.id == ident, model.user_id == user_id))
        if row is None:
            raise NotFound(kind, ident)
        return row


class ApiTokenRepository(SessionRepository):
    def add_token(self, user_id: int, name: str, token_hash: str, prefix: str, scopes: Iterable[str],
                  expires_at: datetime | None, *, mfa_verified: bool = False) -> ApiToken:
        row = ApiToken(user_id=user_id, name=name, token_hash=token_hash, prefix=prefix, scopes=list(scopes),
                       expires_at=expires_at, mfa_verified=mfa_verified)
        self.session.add(row)
        self.session.flush()
        return row

    def token_by_hash(self, token_hash: str) -> ApiToken | None:
        return self.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == token_hash,
                                                             ApiToken.revoked_at.is_(None)))

    def get_token(self, user_id: int, token_id: int) -> ApiToken:
        row: ApiToken = self._owned_by_user(ApiToken, user_id, token_id, "token")
        return row

    def list_tokens(self, user_id: int) -> builtins.list[ApiToken]:
        return list(self.session.scalars(sa.select(ApiToken).where(
            ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None)).order_by(ApiToken.id)))


class RecoveryCodeRepository(Repository):
    def replace(self, user_id: int, code_hashes: Iterable[str]) -> None:
        self.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        self.session.add_all([RecoveryCode(user_id=user_id, code_hash=h) for h in code_hashes])
        self.session.flush()

    def use(self, user_id: int, code_hash: str, at: datetime | None = None) -> bool:
        """Mark an unused code as used; False when there is none with this hash. One
        ``UPDATE ... WHERE used_at IS NULL``, so of two transactions using the same code
        only one marks it (and may pass)."""
        result = self.session.execute(
            sa.update(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.code_hash == code_hash,
                   RecoveryCode.used_at.is_(None))
            .values(used_at=at or utcnow())
            .execution_options(synchronize_session="fetch"))
        return bool(getattr(result, "rowcount", 0) >= 1)

    def remaining(self, user_id: int) -> int:
        return int(self.session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode).where(
            RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))) or 0)


class LoginThrottleRepository(Repository):
    def get(self, email: str) -> LoginThrottle | None:
        return self.session.get(LoginThrottle, email)

    def failed(self, email: str, at: datetime, *, window_start: datetime) -> LoginThrottle:
        """Count one failure (failures older than ``window_start`` are forgotten); the row
        as counted. The count is raised in the database (``INSERT ... ON CONFLICT DO
        NOTHING`` then ``UPDATE ... SET failures = failures + 1``), not read and written
        back, so concurrent failures (guesses sent in parallel) are each counted."""
        self.session.flush()
        dialect = self.session.get_bind().dialect.name
        table: Any = LoginThrottle.__table__
        if dialect == "postgresql":
            create: Any = postgresql.insert(table).values(email=email, failures=0)
        elif dialect == "sqlite":
            create = sqlite.insert(table).values(email=email, failures=0)
        else:  # pragma: no cover - sealbot supports SQLite and PostgreSQL only
            raise RuntimeError(f"unsupported database dialect {dialect!r}")
        stale = sa.and_(LoginThrottle.last_failure_at.is_not(None), LoginThrottle.last_failure_at < window_start)
        for _ in range(2):  # a second time only if ``prune`` in another transaction deleted the row in between
            self.session.execute(create.on_conflict_do_nothing(index_elements=["email"]))
            result = self.session.execute(
                sa.update(LoginThrottle).where(LoginThrottle.email == email)
                .values(failures=sa.case((stale, 1), else_=LoginThrottle.failures + 1), last_failure_at=at)
                .execution_options(synchronize_session=False))
            if getattr(result, "rowcount", 1):
                break
        row = self.session.get(LoginThrottle, email, populate_existing=True)
        if row is None:  # pragma: no cover - inserted above, in this transaction
            raise NotFound("login_throttle", email)
        return row

    def prune(self, at: datetime, *, window_start: datetime, keep: str) -> int:
        """Delete the rows that no longer count: no failure since ``window_start`` and no
        lockout running at ``at`` (``failed`` would start them from one anyway). Every
        e-mail tried gets a row, unknown ones too (so a lockout tells nothing about which
        e-mails exist), and this is what keeps those rows from piling up. ``keep`` (the
        e-mail being counted) is left alone."""
        result = self.session.execute(
            sa.delete(LoginThrottle)
            .where(LoginThrottle.email != keep, LoginThrottle.last_failure_at < window_start,
                   sa.or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= at))
            .execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)

    def clear(self, email: str) -> None:
        self.session.execute(sa.delete(LoginThrottle).where(LoginThrottle.email == email))


class IpThrottleRepository(Repository):
    """Attempts per (scope, client address) in fixed windows (``IpThrottle``)."""

    def get(self, scope: str, ip: str) -> IpThrottle | None:
        return self.session.get(IpThrottle, (scope, ip), populate_existing=True)

    def attempt(self, scope: str, ip: str, at: datetime, *, window: timedelta) -> IpThrottle:
        """Count one attempt: in the address's current window, or as the first of a new one
        starting at ``at`` when the last window has passed. One ``INSERT ... ON CONFLICT DO
        UPDATE`` (SQLite and PostgreSQL), so parallel attempts are each counted, and a row
        pruned meanwhile by another transaction is simply inserted again. Rows of passed
        windows (any address, this scope) are deleted first, so the table holds only the
        addresses seen within one window."""
        self.session.flush()
        self.session.execute(
            sa.delete(IpThrottle)
            .where(IpThrottle.scope == scope, IpThrottle.ip != ip, IpThrottle.window_start <= at - window)
            .execution_options(synchronize_session=False))
        dialect = self.session.get_bind().dialect.name
        table: Any = IpThrottle.__table__
        if dialect == "postgresql":
            insert: Any = postgresql.insert(table)
        elif dialect == "sqlite":
            insert = sqlite.insert(table)
        else:  # pragma: no cover - sealbot supports SQLite and PostgreSQL only
            raise RuntimeError(f"unsupported database dialect {dialect!r}")
        passed = table.c.window_start <= at - window
        self.session.execute(
            insert.values(scope=scope, ip=ip, window_start=at, attempts=1).on_conflict_do_update(
                index_elements=["scope", "ip"],
                set_={"attempts": sa.case((passed, 1), else_=table.c.attempts + 1),
                      "window_start": sa.case((passed, sa.literal(at, table.c.window_start.type)),
                                              else_=table.c.window_start)}))
        row = self.get(scope, ip)
        if row is None:  # pragma: no cover - upserted above, in this transaction
            raise NotFound("ip_throttle", ip)
        return row


class InboxRepository(Repository):
    def add(self, owner_id: int, bot_id: int, kind: str, payload: Mapping[str, Any]) -> BotInboxRow:
        self._owned(Bot, owner_id, bot_id, "bot")
        row = BotInboxRow(owner_id=owner_id, bot_id=bot_id, kind=kind, payload=dict(payload))
        self.session.add(row)
        self.session.flush()
        return row

    def pending(self, *, bot_ids: Iterable[int] | None = None, limit: int = 100) -> builtins.list[BotInboxRow]:
        """Undelivered items, oldest first (system-wide: the engine's read)."""
        stmt = sa.select(BotInboxRow).where(BotInboxRow.delivered_at.is_(None))
        if bot_ids is not None:
            stmt = stmt.where(BotInboxRow.bot_id.in_(list(bot_ids)))
        return list(self.session.scalars(stmt.order_by(BotInboxRow.id).limit(limit)))

    def mark_delivered(self, item_id: int, at: datetime | None = None) -> None:
        row = self.session.get(BotInboxRow, item_id)
        if row is not None and row.delivered_at is None:
            row.delivered_at = at or utcnow()

    def for_bot(self, owner_id: int, bot_id: int) -> builtins.list[BotInboxRow]:
        self._owned(Bot, owner_id, bot_id, "bot")
        return list(self.session.scalars(sa.select(BotInboxRow).where(BotInboxRow.bot_id == bot_id)
                                         .order_by(BotInboxRow.id)))


class WebhookPolicyRepository(Repository):
    def get(self, bot_id: int) -> BotWebhook | None:
        """System-wide read (the webhook does not know the owner before the secret matched)."""
        return self.session.get(BotWebhook, bot_id)

    def put(self, owner_id: int, bot_id: int, *, allowed_ips: Iterable[str] | None, max_per_minute: int) -> BotWebhook:
        self._owned(Bot, owner_id, bot_id, "bot")
        row = self.session.get(BotWebhook, bot_id)
        if row is None:
            row = BotWebhook(bot_id=bot_id, owner_id=owner_id)
            self.session.add(row)
        row.allowed_ips = list(allowed_ips) if allowed_ips is not None else None
        row.max_per_minute = max_per_minute
        self.session.flush()
        return row


class BotLookup(Repository):
    """The one system-wide bot read the webhook needs: a bot by id, owner unknown.
    Callers must check the bot's secret before they act on or reveal anything."""

    def any_bot(self, bot_id: int) -> Bot | None:
        return self.session.get(Bot, bot_id)


class UserAudit(Repository):
    def for_party(self, party: str, *, action: str | None = None, limit: int = 50,
                  offset: int = 0) -> tuple[builtins.list[AuditRecord], int]:
        """Audit records ``party`` (``user:7``) wrote or that are about it, newest first,
        and how many there are."""
        where: builtins.list[Any] = [sa.or_(AuditRecord.actor == party, AuditRecord.subject == party)]
        if action is not None:
            where.append(AuditRecord.action.startswith(action))
        total = int(self.session.scalar(sa.select(sa.func.count()).select_from(AuditRecord).where(*where)) or 0)
        rows = list(self.session.scalars(sa.select(AuditRecord).where(*where).order_by(AuditRecord.seq.desc())
                                         .offset(offset).limit(limit)))
        return rows, total
