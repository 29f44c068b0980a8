"""The grid's state: which intervals are active and what each one holds.

An *interval* ``i`` lies between line ``i`` and line ``i + 1``. It is either buying
(a limit buy waits at line ``i``) or selling (it holds coins and a limit sell waits at
line ``i + 1``). A completed buy-then-sell is one *cycle*; the cycle number goes into
the client order id, so ``g12b3`` is the third buy at line 12 and ``g13s3`` the sell
that closes it. An order that never reached the exchange is placed again under the
next cycle number (``g12b3`` lost, ``g12b4`` sent): its id must be fresh, the step has
no room for a retry suffix (12 characters at most), and an interval's cycle number
only ever grows, so no id repeats. Everything here is immutable; ``step`` returns new
values. The types are frozen ``msgspec`` structs, built and replaced in C (a fill
replaces a slot and the state: as dataclasses, some 40% of a fill's step); the
JSON form below is written by hand and did not change with them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any

from msgspec import Struct, field

from sealbot.bots.grid.codec import dump_deal, load_deal
from sealbot.domain import ClientOrderId, Deal, Side
from sealbot.domain.money import ZERO

DEAL_NO = 1  # a grid is one long-running deal; lines and cycles make its ids unique
INIT_STEP = "init"  # the market buy that funds the intervals above the start price
CLOSE_STEP = "close"  # the market sell of stop_bot_and_sell
_STEP = re.compile(r"^g(n?)(\d+)([bs])(\d+)$")


class Phase(StrEnum):
    NEW = "new"  # waiting for a first price
    RUNNING = "running"
    CLOSING = "closing"  # stopping: waiting for cancels, then selling at market
    STOPPED = "stopped"


class Slot(Struct, frozen=True):
    """One interval. ``side`` is that of its open order (None: no order open)."""

    index: int
    cycle: int = 1
    side: Side | None = None
    amount: Decimal = ZERO  # open order's amount
    filled: Decimal = ZERO  # of the open order
    held: Decimal = ZERO  # base this interval owns, net of fees charged in base
    cost: Decimal = ZERO  # quote paid for ``held``, fees included
    proceeds: Decimal = ZERO  # quote the current sell has received, net of fees
    canceling: bool = False
    lost: int = 0  # sends of the open order that never reached the exchange (capped)
    resume: bool = False  # its order was cancelled outside the bot: placed again on the next price

    @property
    def line(self) -> int:
        """The line its open order sits on."""
        return self.index if self.side is Side.BUY else self.index + 1


class MarketOrder(Struct, frozen=True):
    """The opening market buy or the closing market sell, with what it has done."""

    amount: Decimal
    filled: Decimal = ZERO
    base: Decimal = ZERO  # base received (buy), net of base fees
    quote: Decimal = ZERO  # quote paid (buy) or received (sell), fees included
    slots: tuple[int, ...] = ()  # intervals the opening buy funds
    lost: int = 0  # sends of the closing sell that never reached the exchange (capped)

    @property
    def close_step(self) -> str:
        """The closing sell's step: ``close``, then ``close2``… for each one lost."""
        return CLOSE_STEP if self.lost == 0 else f"{CLOSE_STEP}{self.lost + 1}"


class State(Struct, frozen=True):
    phase: Phase = Phase.NEW
    lo: int = 0  # active intervals are lo .. hi - 1
    hi: int = 0
    slots: Mapping[int, Slot] = field(default_factory=dict)
    retired: Mapping[int, int] = field(default_factory=dict)  # interval -> last cycle used
    opening: MarketOrder | None = None
    closing: MarketOrder | None = None
    deal: Deal | None = None
    dust: Decimal = ZERO  # base below the step size, left over from fees in base
    profit: Decimal = ZERO  # realized quote profit of completed cycles, net of fees
    cycles: int = 0  # completed buy-then-sell cycles
    stop_reason: str | None = None


def order_id(bot: str, slot: Slot) -> ClientOrderId:
    line = slot.line
    sign = "n" if line < 0 else ""
    kind = "b" if slot.side is Side.BUY else "s"
    return ClientOrderId(bot, DEAL_NO, f"g{sign}{abs(line)}{kind}{slot.cycle}")


def parse_step(step: str) -> tuple[int, Side, int] | None:
    """``g12b3`` -> (interval 12, buy, cycle 3); ``g13s3`` -> (interval 12, sell, 3)."""
    match = _STEP.match(step)
    if not match:
        return None
    line = int(match.group(2)) * (-1 if match.group(1) else 1)
    side = Side.BUY if match.group(3) == "b" else Side.SELL
    return (line if side is Side.BUY else line - 1), side, int(match.group(4))


def dump_state(state: State) -> dict[str, Any]:
    """JSON-safe form: Decimals as strings, enums as their values."""
    return {
        "phase": state.phase.value,
        "lo": state.lo,
        "hi": state.hi,
        "slots": [_dump_slot(s) for s in sorted(state.slots.values(), key=lambda s: s.index)],
        "retired": {str(k): v for k, v in sorted(state.retired.items())},
        "opening": _dump_market(state.opening),
        "closing": _dump_market(state.closing),
        "deal": dump_deal(state.deal),
        "dust": str(state.dust),
        "profit": str(state.profit),
        "cycles": state.cycles,
        "stop_reason": state.stop_reason,
    }


def load_state(data: Mapping[str, Any]) -> State:
    slots = [_load_slot(s) for s in data["slots"]]
    return State(
        phase=Phase(data["phase"]),
        lo=int(data["lo"]),
        hi=int(data["hi"]),
        slots={s.index: s for s in slots},
        retired={int(k): int(v) for k, v in data["retired"].items()},
        opening=_load_market(data["opening"]),
        closing=_load_market(data["closing"]),
        deal=load_deal(data["deal"]),
        dust=Decimal(data["dust"]),
        profit=Decimal(data["profit"]),
        cycles=int(data["cycles"]),
        stop_reason=data["stop_reason"],
    )


_SLOT_DECIMALS = ("amount", "filled", "held", "cost", "proceeds")
_MARKET_DECIMALS = ("amount", "filled", "base", "quote")


def _dump_slot(slot: Slot) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": slot.index,
        "cycle": slot.cycle,
        "side": slot.side.value if slot.side else None,
        "canceling": slot.canceling,
        "lost": slot.lost,
    }
    if slot.resume:  # written only when set: a state without it dumps as it always did
        out["resume"] = True
    out.update({name: str(getattr(slot, name)) for name in _SLOT_DECIMALS})
    return out


def _load_slot(data: Mapping[str, Any]) -> Slot:
    return Slot(
        index=int(data["index"]),
        cycle=int(data["cycle"]),
        side=Side(data["side"]) if data["side"] else None,
        canceling=bool(data["canceling"]),
        lost=int(data.get("lost", 0)),  # states saved before re-sending existed have none
        resume=bool(data.get("resume", False)),  # nor before resuming after a cancel outside the bot
        **{name: Decimal(data[name]) for name in _SLOT_DECIMALS},
    )


def _dump_market(order: MarketOrder | None) -> dict[str, Any] | None:
    if order is None:
        return None
    out: dict[str, Any] = {name: str(getattr(order, name)) for name in _MARKET_DECIMALS}
    out["slots"] = list(order.slots)
    out["lost"] = order.lost
    return out


def _load_market(data: Mapping[str, Any] | None) -> MarketOrder | None:
    if data is None:
        return None
    return MarketOrder(
        slots=tuple(int(i) for i in data["slots"]),
        lost=int(data.get("lost", 0)),  # states saved before re-sending existed have none
        **{name: Decimal(data[name]) for name in _MARKET_DECIMALS},
    )
