"""Value types shared by every layer: pairs, money, candles, orders, fills, deals,
and the events and commands that bots consume and produce. Imports nothing of ours."""

from sealbot.domain.candles import Candle, timeframe_seconds
from sealbot.domain.commands import AlertLevel, CancelOrder, Command, DealChanged, PlaceOrder, RaiseAlert, StopBot
from sealbot.domain.deals import CloseReason, Deal, DealStatus
from sealbot.domain.errors import InvalidConfig, NotFound, OrderRejected, Refused, SealbotError
from sealbot.domain.events import (
    AddFunds,
    AmountType,
    BalanceReported,
    CancelDeal,
    CandleClosed,
    CloseAtMarket,
    EditExits,
    Event,
    IndicatorUpdated,
    OrderCanceled,
    OrderFilled,
    PriceTicked,
    SignalAction,
    SignalReceived,
    TimerFired,
)
from sealbot.domain.events import OrderRejected as OrderWasRejected
from sealbot.domain.market import Direction, FeeSchedule, MarketRules, OrderType, Pair, Side, TimeInForce
from sealbot.domain.money import dec
from sealbot.domain.orders import ClientOrderId, Fill, Order, OrderStatus

__all__ = [
    "AddFunds", "AlertLevel", "AmountType", "BalanceReported", "CancelDeal", "CancelOrder", "Candle",
    "CandleClosed", "ClientOrderId", "CloseAtMarket", "CloseReason", "Command", "Deal", "DealChanged",
    "DealStatus", "Direction", "EditExits", "Event", "FeeSchedule", "Fill", "IndicatorUpdated",
    "InvalidConfig", "MarketRules", "NotFound", "Order", "OrderCanceled", "OrderFilled", "OrderRejected",
    "OrderStatus", "OrderType", "OrderWasRejected", "Pair", "PlaceOrder", "PriceTicked", "RaiseAlert",
    "Refused", "SealbotError", "Side", "SignalAction", "SignalReceived", "StopBot", "TimeInForce",
    "TimerFired", "dec", "timeframe_seconds",
]
