"""What every bot is: a pure state machine plus the price levels it is waiting for.

``step(config, state, event) -> (state, commands)`` is the whole contract: no I/O, no
clock, no randomness. ``interest`` lets a driver (backtester, engine) skip events that
cannot change anything: between two candles that stay inside (below, above) a bot's
state is unchanged, so the backtester need not call ``step`` at all. A bot that cannot
say returns ``Interest.ALWAYS``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Generic, Protocol, TypeVar

from msgspec import Struct

from sealbot.domain.commands import Command
from sealbot.domain.events import Event

ConfigT = TypeVar("ConfigT", contravariant=True)
StateT = TypeVar("StateT")


class Interest(Struct, frozen=True):
    """The bot must be woken when price trades at or below ``below``, at or above
    ``above``, or when time reaches ``until``; ``None`` means no trigger that way.
    ``every_candle`` forces a wake-up on each candle (indicator or trailing logic)."""

    below: Decimal | None = None
    above: Decimal | None = None
    until: datetime | None = None
    every_candle: bool = False

    ALWAYS: ClassVar[Interest]


Interest.ALWAYS = Interest(every_candle=True)


class BotKind(Protocol, Generic[ConfigT, StateT]):
    """The module-level functions each bot package exposes."""

    def initial_state(self, config: ConfigT) -> StateT: ...

    def step(self, config: ConfigT, state: StateT, event: Event) -> tuple[StateT, list[Command]]: ...

    def interest(self, config: ConfigT, state: StateT) -> Interest: ...
