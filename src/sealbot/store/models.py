"""The database schema as SQLAlchemy 2 typed models.

Rules the schema keeps:
- every user-owned row carries ``owner_id``, so repositories can scope every query;
- no column ever holds a plaintext secret: a credential's API key *and* secret live
  inside ``ciphertext`` (sealed by custody); only the key's last four characters are
  kept in clear (``api_key_hint``) so the user can tell keys apart;
- money is ``ExactDecimal``; time is ``UtcDateTime`` (aware UTC);
- ``audit_log`` is append-only (database triggers refuse UPDATE/DELETE, see the
  initial migration), and ``audit_head`` holds the chain's last (seq, hash).

The Alembic migrations in ``store/migrations/versions`` are the source of truth for
deployed databases; these models must match them (a test compares the two).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sealbot.store.types import ExactDecimal, UtcDateTime, utcnow

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit ids on PostgreSQL; SQLite needs INTEGER PRIMARY KEY for its rowid alias.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ZERO = Decimal(0)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: UtcDateTime(),
        Decimal: ExactDecimal(),
        dict[str, Any]: sa.JSON(),
        list[str]: sa.JSON(),
        bytes: sa.LargeBinary(),
    }


def _fk(target: str, ondelete: str | None = None) -> sa.ForeignKey:
    return sa.ForeignKey(target, ondelete=ondelete)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    totp_secret_sealed: Mapped[bytes | None]
    # the time step (unix time // 30) of the last TOTP code accepted: a code of that step or
    # an earlier one is refused (RFC 6238 5.2), raised only by a compare-and-set (services.auth)
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]


class ExchangeAccount(Base):
    __tablename__ = "exchange_accounts"
    __table_args__ = (
        sa.CheckConstraint("status IN ('active','paused','flagged','revoked')", name="status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    owner_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    exchange: Mapped[str] = mapped_column(sa.String(40))  # ccxt id, e.g. "binance"
    label: Mapped[str] = mapped_column(sa.String(120))
    is_paper: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    allowed_pairs: Mapped[list[str] | None]
    permission_report: Mapped[dict[str, Any] | None]
    permission_checked_at: Mapped[datetime | None]
    partition: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class Credential(Base):
    """A sealed exchange credential. Opaque blobs only: see custody.envelope."""

    __tablename__ = "credentials"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "version"),
        sa.CheckConstraint("algorithm IN ('hmac-sha256','ed25519','rsa')", name="algorithm"),
        sa.Index("ix_credentials_kek_id_id", "kek_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(Id, _fk("exchange_accounts.id"))
    owner_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    version: Mapped[int]
    algorithm: Mapped[str] = mapped_column(sa.String(16))
    kek_id: Mapped[str] = mapped_column(sa.String(128))
    wrapped_key: Mapped[bytes]
    nonce: Mapped[bytes]
    ciphertext: Mapped[bytes]
    api_key_hint: Mapped[str] = mapped_column(sa.String(4), default="")
    hsm_label: Mapped[str | None] = mapped_column(sa.String(128))
    public_key: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    destroyed_at: Mapped[datetime | None]


class KekRotation(Base):
    """Progress of one KEK rotation, so an interrupted rotation resumes where it stopped."""

    __tablename__ = "kek_rotations"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    from_kek: Mapped[str] = mapped_column(sa.String(128))
    to_kek: Mapped[str] = mapped_column(sa.String(128))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    cursor: Mapped[int] = mapped_column(Id, default=0)  # last credential id rewrapped
    done: Mapped[int] = mapped_column(default=0)


class Bot(Base):
    __tablename__ = "bots"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('dca','grid','smart','signal')", name="kind"),
        sa.CheckConstraint("status IN ('stopped','running','paused','error')", name="status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    owner_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(Id, _fk("exchange_accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(120))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(sa.String(16), default="stopped")
    pause_reason: Mapped[str | None] = mapped_column(sa.Text)
    webhook_secret_hash: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class DealRow(Base):
    __tablename__ = "deals"
    __table_args__ = (sa.UniqueConstraint("bot_id", "no"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    bot_id: Mapped[int] = mapped_column(Id, _fk("bots.id", "CASCADE"))
    owner_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    no: Mapped[int]
    pair: Mapped[str] = mapped_column(sa.String(42))
    direction: Mapped[str] = mapped_column(sa.String(8))
    status: Mapped[str] = mapped_column(sa.String(16))
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(sa.String(32))
    bought: Mapped[Decimal] = mapped_column(default=ZERO)
    spent: Mapped[Decimal] = mapped_column(default=ZERO)
    sold: Mapped[Decimal] = mapped_column(default=ZERO)
    received: Mapped[Decimal] = mapped_column(default=ZERO)
    fees_quote: Mapped[Decimal] = mapped_column(default=ZERO)


class OrderRow(Base):
    __tablename__ = "orders"
    # the guard's daily totals: one owner's orders of one UTC day (engine.store_journal)
    __table_args__ = (sa.Index("ix_orders_owner_id_created_at", "owner_id", "created_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    owner_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    account_id: Mapped[int] = mapped_column(Id, _fk("exchange_accounts.id"), index=True)
    bot_id: Mapped[int | None] = mapped_column(Id, _fk("bots.id", "SET NULL"), index=True)
    deal_no: Mapped[int | None]
    client_order_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    exchange_order_id: Mapped[str | None] = mapped_column(sa.String(128))
    pair: Mapped[str] = mapped_column(sa.String(42))
    side: Mapped[str] = mapped_column(sa.String(4))
    type: Mapped[str] = mapped_column(sa.String(24))
    amount: Mapped[Decimal]
    price: Mapped[Decimal | None]
    stop_price: Mapped[Decimal | None]
    time_in_force: Mapped[str] = mapped_column(sa.String(8), default="GTC")
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    filled: Mapped[Decimal] = mapped_column(default=ZERO)
    average_price: Mapped[Decimal | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    # the time the latest send attempt was signed with (journalled before the request)
    attempted_at: Mapped[datetime | None]
    # what the order counts against its owners' daily notional limits (the notional the
    # guard judged); NULL when it does not count: closing and refused orders, rows before 0011
    guard_notional: Mapped[Decimal | None]


class FillRow(Base):
    __tablename__ = "fills"
    __table_args__ = (sa.UniqueConstraint("order_id", "trade_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(Id, _fk("orders.id", "CASCADE"))
    owner_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    trade_id: Mapped[str] = mapped_column(sa.String(128))
    price: Mapped[Decimal]
    amount: Mapped[Decimal]
    fee: Mapped[Decimal] = mapped_column(default=ZERO)
    fee_currency: Mapped[str] = mapped_column(sa.String(20), default="")
    at: Mapped[datetime]
    is_maker: Mapped[bool] = mapped_column(default=False)


class AlertRow(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    owner_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(Id, _fk("exchange_accounts.id", "SET NULL"))
    bot_id: Mapped[int | None] = mapped_column(Id, _fk("bots.id", "SET NULL"))
    level: Mapped[str] = mapped_column(sa.String(16))
    code: Mapped[str] = mapped_column(sa.String(64))
    message: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    deliveries: Mapped[dict[str, Any] | None]


class SignalRow(Base):
    """Webhook signals seen per bot; the unique key makes a replayed signal a no-op."""

    __tablename__ = "signals"
    __table_args__ = (sa.UniqueConstraint("bot_id", "signal_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    bot_id: Mapped[int] = mapped_column(Id, _fk("bots.id", "CASCADE"))
    signal_id: Mapped[str] = mapped_column(sa.String(128))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.Text)


class AuditRecord(Base):
    """One link of the hash chain. Append-only; see sealbot.audit for the encoding."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    seq: Mapped[int] = mapped_column(Id, unique=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(sa.String(200))
    action: Mapped[str] = mapped_column(sa.String(100), index=True)
    subject: Mapped[str] = mapped_column(sa.String(200))
    details: Mapped[str] = mapped_column(sa.Text)  # canonical JSON text, exactly as hashed
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))


class AuditHead(Base):
    """The chain's last (seq, hash), one row (id = 1). Appenders lock it, which
    serialises them; verify compares it with the last record, so cutting records
    off the end of the chain is detected too."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Id, default=0)
    hash: Mapped[str] = mapped_column(sa.String(64))


# --- web tier: sessions, API tokens, 2FA recovery codes, login throttling, bot inbox ---
# (added by the web issue, migration 0002). Only hashes of tokens and codes are kept.


class WebSession(Base):
    """A server-side login session; the cookie holds the token, the row only its sha256."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    mfa_verified: Mapped[bool] = mapped_column(default=False)
    ip: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(200))
    pending_totp_sealed: Mapped[bytes | None]  # a TOTP secret being set up, sealed by custody
    revoked_at: Mapped[datetime | None]


class ApiToken(Base):
    """A scoped personal API token; shown once, stored as its sha256."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    scopes: Mapped[list[str]]
    # made by a session that passed 2FA: only then may the token link, reveal or revoke keys
    mfa_verified: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class RecoveryCode(Base):
    """A one-time 2FA recovery code (sha256 of a high-entropy random code)."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    used_at: Mapped[datetime | None]


class LoginThrottle(Base):
    """Failed logins per (lower-cased) e-mail, and the lockout they caused."""

    __tablename__ = "login_throttle"

    email: Mapped[str] = mapped_column(sa.String(320), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]


class IpThrottle(Base):
    """Attempts per client address in a fixed window, per ``scope`` (``login``: failed
    logins, ``register``: sign-ups); rows whose window has passed are pruned."""

    __tablename__ = "ip_throttle"

    scope: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    ip: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    window_start: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)


class BotInboxRow(Base):
    """Events for a bot from outside the engine (webhook signals, close/add-funds
    requests), waiting until the engine takes them (``delivered_at``)."""

    __tablename__ = "bot_inbox"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    owner_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    bot_id: Mapped[int] = mapped_column(Id, _fk("bots.id", "CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class BotWebhook(Base):
    """Per-bot webhook policy: source-IP allow-list and rate limit."""

    __tablename__ = "bot_webhooks"

    bot_id: Mapped[int] = mapped_column(Id, _fk("bots.id", "CASCADE"), primary_key=True, autoincrement=False)
    owner_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    allowed_ips: Mapped[list[str] | None]
    max_per_minute: Mapped[int] = mapped_column(default=30)


# --- portfolio and copy trading (engine issue, migration 0003) ---


class UserSettings(Base):
    """Per-user preferences that are not credentials: today the currency the portfolio
    is valued in. A user without a row gets the defaults (``USDT``)."""

    __tablename__ = "user_settings"

    user_id: Mapped[int] = mapped_column(Id, _fk("users.id", "CASCADE"), primary_key=True, autoincrement=False)
    valuation_currency: Mapped[str] = mapped_column(sa.String(20), default="USDT")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PortfolioSnapshot(Base):
    """One refresh of one account's balances, valued in ``currency`` at ``taken_at``.
    ``total_value`` sums the lines that could be valued; ``unvalued`` names the assets
    that could not (no route to ``currency`` through the exchange's tickers)."""

    __tablename__ = "portfolio_snapshots"
    __table_args__ = (sa.Index("ix_portfolio_snapshots_account_id_taken_at", "account_id", "taken_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    owner_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    account_id: Mapped[int] = mapped_column(Id, _fk("exchange_accounts.id", "CASCADE"))
    taken_at: Mapped[datetime]
    currency: Mapped[str] = mapped_column(sa.String(20))
    total_value: Mapped[Decimal]
    unvalued: Mapped[list[str]] = mapped_column(default=list)


class BalanceSnapshot(Base):
    """One asset's balance inside a ``PortfolioSnapshot``. ``price``/``value`` are in the
    snapshot's currency and ``None`` when the asset could not be valued; ``route`` says
    through which tickers it was (e.g. ``ETH/BTC>BTC/USDT``)."""

    __tablename__ = "balance_snapshots"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(Id, _fk("portfolio_snapshots.id", "CASCADE"), index=True)
    owner_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    account_id: Mapped[int] = mapped_column(Id, _fk("exchange_accounts.id", "CASCADE"))
    asset: Mapped[str] = mapped_column(sa.String(20))
    free: Mapped[Decimal]
    used: Mapped[Decimal]
    total: Mapped[Decimal]
    price: Mapped[Decimal | None]
    value: Mapped[Decimal | None]
    route: Mapped[str | None] = mapped_column(sa.String(120))


class BotGroup(Base):
    """A copy set: one bot config run by N member bots, one per linked account, each
    sized on its own (``BotGroupMember``). One webhook secret fans a signal out to all."""

    __tablename__ = "bot_groups"
    __table_args__ = (sa.CheckConstraint("kind IN ('dca','grid','smart','signal')", name="kind"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    owner_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(120))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    webhook_secret_hash: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BotGroupMember(Base):
    """One member bot of a copy set, on one account, with its sizing: ``multiplier``
    scales every size of the group's config, or ``base_size`` fixes the entry size."""

    __tablename__ = "bot_group_members"
    __table_args__ = (sa.UniqueConstraint("group_id", "account_id"),)

    bot_id: Mapped[int] = mapped_column(Id, _fk("bots.id", "CASCADE"), primary_key=True, autoincrement=False)
    group_id: Mapped[int] = mapped_column(Id, _fk("bot_groups.id", "CASCADE"), index=True)
    owner_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    account_id: Mapped[int] = mapped_column(Id, _fk("exchange_accounts.id"))
    multiplier: Mapped[Decimal | None]
    base_size: Mapped[Decimal | None]


class AccountGuardLimits(Base):
    """An account's own pre-trade limits (``engine.guard.GuardLimits.to_dict``), applied on
    top of the user's: each account of a copy set is guarded on its own."""

    __tablename__ = "account_guard_limits"

    account_id: Mapped[int] = mapped_column(Id, _fk("exchange_accounts.id", "CASCADE"), primary_key=True,
                                            autoincrement=False)
    owner_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    limits: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class UserGuardLimits(Base):
    """A user's own pre-trade limits (``engine.guard.GuardLimits.to_dict``) for all their
    accounts: the daily total is the user's across every account. A user without a row is
    guarded by the engine's defaults."""

    __tablename__ = "user_guard_limits"

    user_id: Mapped[int] = mapped_column(Id, _fk("users.id", "CASCADE"), primary_key=True, autoincrement=False)
    limits: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --- alert delivery channels (engine issue, notifications) ---


class NotificationChannel(Base):
    """Where one user's alerts are sent: a signed webhook (``target`` = URL), an e-mail
    address, or a Telegram chat id. A webhook's HMAC signing key is generated by sealbot,
    shown once, and kept only **sealed** by custody (migration 0008): the ``secret_*``
    columns are an envelope-encrypted blob bound to (owner, channel, ``secret_version``),
    opened only where the KEK is, to sign one alert at a time. A copy of the database
    therefore cannot forge alerts. The last delivery's outcome is kept for the user to see."""

    __tablename__ = "notification_channels"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('webhook','email','telegram')", name="kind"),
        sa.CheckConstraint("min_level IN ('info','warning','critical')", name="min_level"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    owner_id: Mapped[int] = mapped_column(Id, _fk("users.id", "CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    target: Mapped[str] = mapped_column(sa.String(2048))
    min_level: Mapped[str] = mapped_column(sa.String(16), default="warning")
    enabled: Mapped[bool] = mapped_column(default=True)
    secret_kek_id: Mapped[str | None] = mapped_column(sa.String(128))
    secret_wrapped_key: Mapped[bytes | None]
    secret_nonce: Mapped[bytes | None]
    secret_ciphertext: Mapped[bytes | None]
    secret_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_delivery_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    last_error_at: Mapped[datetime | None]

    def __repr__(self) -> str:  # explicit: the sealed key's columns stay out of reprs and log lines
        return f"NotificationChannel(id={self.id!r}, owner_id={self.owner_id!r}, kind={self.kind!r})"


class BotGroupWebhook(Base):
    """A copy set's webhook policy: source-IP allow-list and rate limit (migration 0005)."""

    __tablename__ = "bot_group_webhooks"

    group_id: Mapped[int] = mapped_column(Id, _fk("bot_groups.id", "CASCADE"), primary_key=True,
                                          autoincrement=False)
    owner_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    allowed_ips: Mapped[list[str] | None]
    max_per_minute: Mapped[int] = mapped_column(default=30)


class EnginePartition(Base):
    """One account partition of the scaled-out engine (migration 0006). ``epoch`` goes up
    each time a worker takes the partition over; every write of the partition's accounts
    checks it, so a worker that lost the partition cannot write any more (the fence)."""

    __tablename__ = "engine_partitions"

    partition: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    epoch: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    owner: Mapped[str | None] = mapped_column(sa.String(128))
    claimed_at: Mapped[datetime | None]
    heartbeat: Mapped[datetime | None]


class EngineAccountPartition(Base):
    """An account's partition when it is not the default crc32(account id) mod P."""

    __tablename__ = "engine_account_partitions"

    account_id: Mapped[int] = mapped_column(Id, _fk("exchange_accounts.id", "CASCADE"), primary_key=True,
                                            autoincrement=False)
    partition: Mapped[int]


class EngineWorker(Base):
    """A live worker's heartbeat: peers count each other here to compute a fair share."""

    __tablename__ = "engine_workers"

    worker: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat: Mapped[datetime] = mapped_column(default=utcnow)
    partitions: Mapped[int] = mapped_column(default=0)


class EngineMessage(Base):
    """A broker message the engine applied, committed in the same transaction as its
    effect: a redelivered message finds its id here and is acknowledged, not applied again."""

    __tablename__ = "engine_messages"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    message_id: Mapped[str] = mapped_column(sa.String(128), unique=True)
    partition: Mapped[int]
    epoch: Mapped[int] = mapped_column(sa.BigInteger())
    worker: Mapped[str] = mapped_column(sa.String(128))
    account_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    seq: Mapped[int | None] = mapped_column(sa.BigInteger())
    sent_at: Mapped[datetime | None]
    committed_at: Mapped[datetime] = mapped_column(default=utcnow)


class WatchdogFlag(Base):
    """An order or trade the watchdog flagged on an account (migration 0007): whichever
    process watches the account next reads it, so a foreign order still open after a
    restart or a partition takeover is not reported (and its bots paused) a second time.
    Written in the same transaction as the alert. ``ref`` is ``order:<pair>:<exchange id>``
    or ``trade:<pair>:<trade id>``; the unique (account, ref) index serves the per-poll
    lookup of the ids just fetched."""

    __tablename__ = "watchdog_flags"
    __table_args__ = (sa.UniqueConstraint("account_id", "ref"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    owner_id: Mapped[int] = mapped_column(Id, _fk("users.id"), index=True)
    account_id: Mapped[int] = mapped_column(Id, _fk("exchange_accounts.id", "CASCADE"))
    ref: Mapped[str] = mapped_column(sa.String(200))
    alert_id: Mapped[int | None] = mapped_column(Id, _fk("alerts.id", "SET NULL"))
    flagged_at: Mapped[datetime] = mapped_column(default=utcnow)
