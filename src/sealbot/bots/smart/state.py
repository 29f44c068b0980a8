"""Smart trade state: waiting for its entry, in the trade (a shared ``Position``), or done."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from msgspec import Struct

from sealbot.bots.common.executor import Position
from sealbot.bots.common.serde import dump_struct, load_struct


class Stage(StrEnum):
    NEW = "new"
    WAITING = "waiting"  # conditional / trailing / market-by-volume entry not triggered yet
    IN_TRADE = "in_trade"
    DONE = "done"


class SmartState(Struct, frozen=True):
    stage: Stage = Stage.NEW
    pos: Position | None = None
    extreme: Decimal | None = None  # trailing entry: best price since activation
    entered_at: datetime | None = None  # when the position became active: the timeout runs from here


def dump_state(state: SmartState) -> dict[str, Any]:
    return dump_struct(state)


def load_state(data: dict[str, Any]) -> SmartState:
    return load_struct(SmartState, data)
