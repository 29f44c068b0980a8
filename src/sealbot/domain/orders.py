"""Orders, fills and the idempotent client order id that ties them to a bot's deal."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from msgspec import Struct

from sealbot.domain.market import OrderType, Pair, Side, TimeInForce
from sealbot.domain.money import ZERO

# Binance allows ^[.A-Z:/a-z0-9_-]{1,36}$, KuCoin 40 chars: the id fits both.
_CLIENT_ID = re.compile(r"^sb([A-Za-z0-9]{1,12})-(\d{1,9})-([A-Za-z0-9.]{1,12})$")
MAX_CLIENT_ID_LENGTH = 36


class ClientOrderId(Struct, frozen=True, order=True):
    """Derived from (bot, deal, step), never random: placing the same step twice yields
    the same id, so the exchange itself refuses the duplicate and a restart can find
    the order it may or may not have sent."""

    bot: str
    deal: int
    step: str

    def __post_init__(self) -> None:
        if not (self.bot.isalnum() and self.bot.isascii() and 1 <= len(self.bot) <= 12):
            raise ValueError("client order id: bot must be 1-12 ASCII letters/digits")
        if not 0 <= self.deal < 10**9:
            raise ValueError("client order id: deal must be 0..999999999")
        if not (1 <= len(self.step) <= 12 and self.step.replace(".", "").isalnum() and self.step.isascii()):
            raise ValueError("client order id: step must be 1-12 ASCII letters/digits/dots")
        # each part within its bound can still add up past Binance's 36 (2 + 12 + 1 + 9 + 1 + 12)
        length = 4 + len(self.bot) + len(str(self.deal)) + len(self.step)
        if length > MAX_CLIENT_ID_LENGTH:
            raise ValueError(f"client order id: {length} characters, more than the {MAX_CLIENT_ID_LENGTH} "
                             "every exchange takes")

    @property
    def text(self) -> str:
        return f"sb{self.bot}-{self.deal}-{self.step}"

    @classmethod
    def parse(cls, text: str) -> ClientOrderId:
        match = _CLIENT_ID.match(text)
        if not match:
            raise ValueError(f"client order id: {text!r} is not a sealbot id")
        return cls(match.group(1), int(match.group(2)), match.group(3))

    def __str__(self) -> str:
        return self.text


class OrderStatus(StrEnum):
    PENDING = "pending"  # journalled, request not yet answered
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED})


class Order(Struct, frozen=True):
    """What sealbot asked an exchange for, and what it knows of its fate."""

    client_id: ClientOrderId
    pair: Pair
    side: Side
    type: OrderType
    amount: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    status: OrderStatus = OrderStatus.PENDING
    filled: Decimal = ZERO
    average_price: Decimal | None = None
    exchange_id: str | None = None

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled


class Fill(Struct, frozen=True):
    """One execution. ``fee`` is charged in ``fee_currency``, as the exchange charges it
    (Binance: in the asset received, unless paid in BNB)."""

    client_id: ClientOrderId
    pair: Pair
    side: Side
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_currency: str
    at: datetime
    trade_id: str
    is_maker: bool = False

    @property
    def notional(self) -> Decimal:
        return self.price * self.amount
