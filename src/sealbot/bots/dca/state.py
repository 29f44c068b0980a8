"""The DCA bot's state: its open deals (each a shared ``Position`` plus the safety-order
progress) and the bot-level counters that decide when the next deal may start."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from msgspec import Struct

from sealbot.bots.common.executor import Position
from sealbot.bots.common.serde import dump_struct, load_struct
from sealbot.domain.market import Pair


class DcaDeal(Struct, frozen=True):
    pos: Position
    base_price: Decimal | None = None  # base order fill price: the safety grid hangs off it
    so_placed: int = 0
    adds: int = 0  # manual add-funds orders placed
    so_lost: tuple[int, ...] = ()  # safety orders cancelled outside the bot, unfilled: placed again on a price
    so_rev: int = 0  # safety orders so placed again (their ids: ``so<n>.<rev>``)
    so_held: int = 0  # places of part-filled safety orders cancelled outside: the next goes out on a price


class DcaState(Struct, frozen=True):
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
    return dump_struct(state)


def load_state(data: dict[str, Any]) -> DcaState:
    return load_struct(DcaState, data)
