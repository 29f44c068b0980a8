"""A deal: one round trip of a bot on one pair, from entry to exit."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from msgspec import Struct, structs

from sealbot.domain.market import Direction, Pair
from sealbot.domain.money import ZERO


class DealStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    CANCELED = "canceled"


class CloseReason(StrEnum):
    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"
    MANUAL = "manual"
    SIGNAL = "signal"
    TIMEOUT = "timeout"
    PANIC = "panic"
    CANCELED = "canceled"


class Deal(Struct, frozen=True):
    """What a deal has done so far, in the pair's own units.

    ``bought``/``sold`` are base amounts, ``spent``/``received`` quote amounts, fees
    converted to quote at the fill price. A long buys first; a short sells first.
    """

    bot: str
    no: int
    pair: Pair
    direction: Direction
    opened_at: datetime
    status: DealStatus = DealStatus.OPEN
    closed_at: datetime | None = None
    close_reason: CloseReason | None = None
    bought: Decimal = ZERO
    spent: Decimal = ZERO
    sold: Decimal = ZERO
    received: Decimal = ZERO
    fees_quote: Decimal = ZERO

    @property
    def position(self) -> Decimal:
        """Base held by the deal (negative for an open short)."""
        return self.bought - self.sold

    @property
    def average_entry(self) -> Decimal | None:
        if self.direction is Direction.LONG:
            return self.spent / self.bought if self.bought else None
        return self.received / self.sold if self.sold else None

    @property
    def realized_profit(self) -> Decimal:
        """Quote profit net of fees; meaningful once the deal is closed.

        A fee taken in base and the exchange's step size leave a remainder an exit cannot
        sell (Binance: a buy's fee comes out of the base received, and the exit is rounded
        down to the step). That remainder stays in the account, so it is valued at the
        deal's average exit price rather than counted as lost: a take profit never shows
        as a loss because of dust."""
        cash = self.received - self.spent - self.fees_quote
        remainder = self.bought - self.sold  # > 0: base left over; < 0: base still owed
        exited, exit_quote = (self.sold, self.received) if self.direction is Direction.LONG else (self.bought,
                                                                                                 self.spent)
        if remainder == 0 or exited == 0:
            return cash
        return cash + remainder * exit_quote / exited

    def close(self, at: datetime, reason: CloseReason) -> Deal:
        return structs.replace(self, status=DealStatus.CLOSED, closed_at=at, close_reason=reason)
