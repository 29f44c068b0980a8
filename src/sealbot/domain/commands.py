"""Commands: what a bot asks the world to do. The engine (live, paper) and the
backtester carry them out; a bot never does I/O itself."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sealbot.domain.deals import Deal
from sealbot.domain.orders import ClientOrderId, Order


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    order: Order


@dataclass(frozen=True, slots=True)
class CancelOrder:
    client_id: ClientOrderId


class AlertLevel(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class RaiseAlert:
    level: AlertLevel
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class StopBot:
    reason: str


@dataclass(frozen=True, slots=True)
class DealChanged:
    """The deal's bookkeeping after this step (opened, filled into, or closed), so the
    engine and the backtester record deals without reading a bot's internals."""

    deal: Deal


Command = PlaceOrder | CancelOrder | RaiseAlert | StopBot | DealChanged
