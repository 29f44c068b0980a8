"""Commands: what a bot asks the world to do. The engine (live, paper) and the
backtester carry them out; a bot never does I/O itself."""

from __future__ import annotations

from enum import StrEnum

from msgspec import Struct

from sealbot.domain.deals import Deal
from sealbot.domain.orders import ClientOrderId, Order


class PlaceOrder(Struct, frozen=True):
    order: Order


class CancelOrder(Struct, frozen=True):
    client_id: ClientOrderId


class AlertLevel(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class RaiseAlert(Struct, frozen=True):
    level: AlertLevel
    code: str
    message: str


class StopBot(Struct, frozen=True):
    reason: str


class DealChanged(Struct, frozen=True):
    """The deal's bookkeeping after this step (opened, filled into, or closed), so the
    engine and the backtester record deals without reading a bot's internals."""

    deal: Deal


Command = PlaceOrder | CancelOrder | RaiseAlert | StopBot | DealChanged
