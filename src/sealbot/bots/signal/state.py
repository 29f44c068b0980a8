"""The signal bot's state: open positions (one per pair), balances, seen signals.

Frozen ``msgspec`` structs (built and replaced in C, as the other bots' states), so
``msgspec.structs.replace`` changes them; the domain values they hold (``Deal``,
``SignalReceived``) stay dataclasses. ``serde`` dumps both alike (format unchanged)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from msgspec import Struct

from sealbot.bots.common import dump_dataclass, load_dataclass
from sealbot.domain import CloseReason, Deal, SignalReceived
from sealbot.domain.money import ZERO

SEEN_KEPT = 256  # signal ids remembered for idempotency


class Position(Struct, frozen=True):
    """One deal. ``held`` is base the deal must exit: coins held (long) or owed (short),
    net of fees charged in base. An exit never trades more than it.

    ``entry_after_close`` is the entry signal of a reversal under way: it is acted on
    (sized, checked, placed) only once this deal's exit has filled completely, so the
    opposite position never opens while this one still holds coins."""

    deal: Deal
    entry_amount: Decimal
    entry_filled: Decimal = ZERO
    entry_done: bool = False
    held: Decimal = ZERO
    exit_attempt: int = 0  # the ``x<n>`` step of the last exit sent
    exit_lost: int = 0  # exits of the current decision that never reached the exchange
    exit_amount: Decimal | None = None  # open exit order
    exit_filled: Decimal = ZERO
    exit_requested: bool = False  # an exit came while the entry (or an add) was still open
    exit_reason: CloseReason = CloseReason.SIGNAL
    adds: int = 0  # the ``a<n>`` step of the last add-funds order
    add_open: bool = False
    entry_after_close: SignalReceived | None = None  # a reversal's entry, waiting for the close


class Balance(Struct, frozen=True):
    asset: str
    free: Decimal


class State(Struct, frozen=True):
    positions: tuple[Position, ...] = ()
    balances: tuple[Balance, ...] = ()
    next_deal: int = 1
    seen: tuple[str, ...] = ()


def dump_state(state: State) -> dict[str, Any]:
    """JSON-safe form (Decimals as strings)."""
    return dump_dataclass(state)


def load_state(data: dict[str, Any]) -> State:
    return load_dataclass(State, data)
