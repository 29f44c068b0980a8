"""Request and response bodies of the REST API (they are its OpenAPI description).

Money is a decimal string in JSON; times are ISO 8601 UTC. No response model has a
field that could hold a secret except the three shown once on creation
(``TokenCreated.token``, ``WebhookSecret.secret``, ``TotpSetupOut.secret``/recovery codes).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

T = TypeVar("T")
MAX_ID = 2_147_483_647  # ids are 32-bit in every database we run on: a larger one is a 422, not an overflow


class Model(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorOut(Model):
    """Every error: ``reason`` always; ``field`` (a dotted path) for 422; ``rule`` for 403."""

    reason: str
    field: str | None = None
    rule: str | None = None
    errors: list[dict[str, str]] | None = None


class PageOut(Model, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


# --- auth -----------------------------------------------------------------------------


class RegisterIn(Model):
    email: str = Field(min_length=3, max_length=320)
    password: SecretStr = Field(min_length=10, max_length=1024)


class LoginIn(Model):
    email: str = Field(min_length=1, max_length=320)
    password: SecretStr = Field(min_length=1, max_length=1024)
    totp_code: str | None = Field(default=None, max_length=32,
                                  description="6-digit code from the authenticator app, or a recovery code")


class PasswordChangeIn(Model):
    current_password: SecretStr = Field(min_length=1, max_length=1024)
    new_password: SecretStr = Field(min_length=10, max_length=1024)


class LoginOut(Model):
    user_id: int
    csrf_token: str = Field(description="send as X-CSRF-Token on state-changing requests made with the cookie")
    mfa: bool


class UserOut(Model):
    id: int
    email: str
    is_admin: bool
    totp_enabled: bool
    recovery_codes_left: int
    created_at: datetime
    disabled: bool


class TotpSetupOut(Model):
    secret: str = Field(description="base32 secret for the authenticator app; shown once")
    uri: str = Field(description="otpauth:// URI (render as a QR code)")


class CodeIn(Model):
    code: str = Field(min_length=6, max_length=32)


class RecoveryCodesOut(Model):
    recovery_codes: list[str] = Field(description="one-time codes; shown once, stored hashed")


class SessionOut(Model):
    id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool


class TokenIn(Model):
    name: str = Field(min_length=1, max_length=120)
    scopes: list[str] = Field(min_length=1, max_length=20)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenOut(Model):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class TokenCreated(Model):
    id: int
    name: str
    token: str = Field(description="the token itself; shown once, stored hashed")
    prefix: str
    scopes: list[str]
    expires_at: datetime | None


# --- accounts ---------------------------------------------------------------------------


class AccountLinkIn(Model):
    exchange: str = Field(min_length=2, max_length=40, pattern=r"^[a-z0-9]+$")
    label: str = Field(min_length=1, max_length=120)
    api_key: SecretStr = Field(min_length=1, max_length=512)
    api_secret: SecretStr = Field(min_length=1, max_length=8192)
    passphrase: SecretStr | None = Field(default=None, max_length=512)
    allowed_pairs: list[str] | None = Field(default=None, max_length=500)


class AccountOut(Model):
    id: int
    exchange: str
    label: str
    status: str
    api_key_hint: str = Field(description="last four characters of the API key")
    permissions: dict[str, Any] = Field(description="the exchange's permission-check result")
    checked_at: datetime | None


class RevocationOut(Model):
    scope: str
    reason: str
    lines: list[str]


# --- bots --------------------------------------------------------------------------------


class BotIn(Model):
    kind: Literal["dca", "grid", "smart", "signal"]
    name: str = Field(min_length=1, max_length=120)
    account_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    config: dict[str, Any]
    start: bool = False


class BotEditIn(Model):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    config: dict[str, Any] | None = None


class PreviewIn(Model):
    kind: Literal["dca", "grid", "smart", "signal"]
    config: dict[str, Any]
    price: Decimal = Field(gt=0)


class BotOut(Model):
    id: int
    kind: str
    name: str
    status: str
    pause_reason: str | None = None
    account_id: int | None
    config: dict[str, Any]
    has_webhook_secret: bool = False
    version: int = 1


class WebhookSecretOut(Model):
    secret: str = Field(description="put into the TradingView alert body; shown once, stored hashed")
    url_path: str


class WebhookPolicyIn(Model):
    allowed_ips: list[str] | None = Field(
        default=None, max_length=100,
        description='addresses or networks; "tradingview" adds TradingView\'s four webhook addresses; null: any')
    max_per_minute: int = Field(default=30, ge=1, le=600)


class WebhookPolicyOut(Model):
    bot_id: int
    allowed_ips: list[str] | None
    max_per_minute: int


# --- deals --------------------------------------------------------------------------------


class DealOut(Model):
    bot_id: int
    no: int
    pair: str
    direction: str
    status: str
    opened_at: datetime
    closed_at: datetime | None
    close_reason: str | None
    bought: Decimal
    spent: Decimal
    sold: Decimal
    received: Decimal
    fees_quote: Decimal
    average_entry: Decimal | None
    realized_profit: Decimal | None


class OrderOut(Model):
    client_order_id: str
    pair: str
    side: str
    type: str
    amount: Decimal
    price: Decimal | None
    status: str
    filled: Decimal
    average_price: Decimal | None


class FillOut(Model):
    client_order_id: str
    trade_id: str
    side: str
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_currency: str
    at: datetime


class DealDetailOut(Model):
    deal: DealOut
    orders: list[OrderOut]
    fills: list[FillOut]


class AddFundsIn(Model):
    amount: Decimal = Field(gt=0)
    amount_type: Literal["quote", "base"] = "quote"
    price: Decimal | None = Field(default=None, gt=0, description="limit price; omit for market")


class Queued(Model):
    queued: int = Field(description="inbox item id the engine will pick up")


# --- alerts, audit, portfolio ----------------------------------------------------------------


class AlertOut(Model):
    id: int
    level: str
    code: str
    message: str
    account_id: int | None
    bot_id: int | None
    created_at: datetime
    acknowledged_at: datetime | None


class AuditOut(Model):
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]


class QuoteSummaryOut(Model):
    quote: str
    profit_today: Decimal
    profit_total: Decimal
    open_deals: int
    in_open_deals: Decimal
    closed_deals: int


class DailyProfitOut(Model):
    day: date
    quote: str
    profit: Decimal


class PortfolioOut(Model):
    by_quote: list[QuoteSummaryOut]
    daily_profit: list[DailyProfitOut]
    open_deals: int
    closed_deals: int


# --- signals ------------------------------------------------------------------------------


class SignalAccepted(Model):
    status: Literal["accepted"] = "accepted"
    signal_id: str
    action: str


class SignalRefusedOut(Model):
    status: Literal["refused"] = "refused"
    kind: str
    reason: str
    field: str | None = None


class CandleOut(Model):
    time: int = Field(description="bar start, Unix seconds (UTC)")
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


class MarkerOut(Model):
    time: int
    kind: Literal["entry", "safety", "exit"]
    side: str
    price: Decimal
    amount: Decimal


class DealChartOut(Model):
    pair: str
    timeframe: str = Field(description="of the candles: the finest that shows the whole deal in one request")
    candles: list[CandleOut]
    markers: list[MarkerOut]
    candles_error: str | None = None
