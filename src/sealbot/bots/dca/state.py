"""The DCA bot's state: its open deals (each a shared ``Position`` plus the safety-order
progress) and the bot-level counters that decide when the next deal may start."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sealbot.bots.common.executor import Position
from sealbot.bots.common.serde import dump_dataclass, load_dataclass
from sealbot.domain.market import Pair


@dataclass(frozen=True, slots=True)
class DcaDeal:
    pos: Position
    base_price: Decimal | None = None  # base order fill price: the safety grid hangs off it
    so_placed: int = 0
    adds: int = 0  # manual add-funds orders placed


@dataclass(frozen=True, slots=True)
class DcaState:
    deals: tuple[DcaDeal, ...] = ()
    next_deal: int = 1
    cooldown_until: datetime | None = None
    start_requests: tuple[Pair, ...] = ()  # pairs a start signal asked for
    rsi_ok: tuple[Pair, ...] = ()  # pairs whose latest RSI meets the start condition
    stopped: bool = False
    closed_deals: int = 0

    def deal(self, no: int) -> DcaDeal | None:
        for deal in self.deals:
            if deal.pos.no == no:
                return deal
        return None


def dump_state(state: DcaState) -> dict[str, Any]:
    return dump_dataclass(state)


def load_state(data: dict[str, Any]) -> DcaState:
    return load_dataclass(DcaState, data)
