"""Events: everything that can happen to a bot. A bot learns the time only from them.

Each is a small immutable type, named for what happened. The engine, the backtester
and tests produce them; ``bots.*.step`` consumes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sealbot.domain.candles import Candle
from sealbot.domain.market import Pair
from sealbot.domain.orders import ClientOrderId, Fill


@dataclass(frozen=True, slots=True)
class CandleClosed:
    candle: Candle

    @property
    def at(self) -> datetime:
        return self.candle.close_time


@dataclass(frozen=True, slots=True)
class PriceTicked:
    """A last-trade price between candles, for trailing and conditional triggers."""

    pair: Pair
    price: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class IndicatorUpdated:
    """An indicator value computed outside the bot (by a maintained library), so the
    bot stays a pure function: e.g. name ``rsi``, period 14, timeframe ``1h``."""

    pair: Pair
    timeframe: str
    name: str
    period: int
    value: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class OrderFilled:
    """A (possibly partial) execution; ``remaining`` is what is still open after it."""

    fill: Fill
    remaining: Decimal

    @property
    def at(self) -> datetime:
        return self.fill.at

    @property
    def client_id(self) -> ClientOrderId:
        return self.fill.client_id


@dataclass(frozen=True, slots=True)
class OrderCanceled:
    client_id: ClientOrderId
    at: datetime


@dataclass(frozen=True, slots=True)
class OrderRejected:
    """The order is gone without trading. ``unsent``: sealbot gave up sending it (the
    exchange never saw it: it found no trace past the time any attempt could still be
    carried out), not a refusal by the exchange or the guard, so its cause need not
    hold for another order."""

    client_id: ClientOrderId
    reason: str
    at: datetime
    unsent: bool = False


class SignalAction(StrEnum):
    ENTER_LONG = "enter_long"
    EXIT_LONG = "exit_long"
    ENTER_SHORT = "enter_short"
    EXIT_SHORT = "exit_short"
    CLOSE_ALL = "close_all"
    START_DEAL = "start_deal"
    CLOSE_AT_MARKET = "close_at_market_price"
    ADD_FUNDS_IN_QUOTE = "add_funds_in_quote"
    ADD_FUNDS_IN_BASE = "add_funds_in_base"


class AmountType(StrEnum):
    QUOTE = "quote"  # a fixed amount of the quote currency
    BASE = "base"  # a base quantity
    PERCENT_OF_BALANCE = "percent_of_balance"


@dataclass(frozen=True, slots=True)
class SignalReceived:
    """An authenticated, fresh signal (parsing and secret checks happen before this)."""

    signal_id: str
    action: SignalAction
    at: datetime
    pair: Pair | None = None
    amount: Decimal | None = None
    amount_type: AmountType | None = None
    trigger_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class TimerFired:
    """Wall-clock progress with no market event (timeouts, cooldowns)."""

    at: datetime


@dataclass(frozen=True, slots=True)
class AddFunds:
    deal: int
    amount: Decimal
    amount_type: AmountType
    at: datetime
    price: Decimal | None = None  # None: at market


@dataclass(frozen=True, slots=True)
class EditExits:
    """Change a running deal's take profit / stop loss (percent), None leaves it as is."""

    deal: int
    at: datetime
    take_profit_pct: Decimal | None = None
    stop_loss_pct: Decimal | None = None


@dataclass(frozen=True, slots=True)
class CloseAtMarket:
    deal: int
    at: datetime


@dataclass(frozen=True, slots=True)
class CancelDeal:
    """Cancel the deal's orders and forget it, keeping what was bought."""

    deal: int
    at: datetime


@dataclass(frozen=True, slots=True)
class BalanceReported:
    """Free balance of one asset, so %-of-balance sizing stays pure."""

    asset: str
    free: Decimal
    at: datetime


Event = (
    CandleClosed
    | PriceTicked
    | IndicatorUpdated
    | OrderFilled
    | OrderCanceled
    | OrderRejected
    | SignalReceived
    | TimerFired
    | AddFunds
    | EditExits
    | CloseAtMarket
    | CancelDeal
    | BalanceReported
)
