"""Bot kind -> bot package. Imported lazily, so one kind's absence or import error
cannot break the others (and the engine loads only the kinds it runs)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, cast

from pydantic import BaseModel

from sealbot.bots.base import Interest
from sealbot.bots.common import parse_config as parse_model
from sealbot.domain import Command, Event, InvalidConfig

KINDS: tuple[str, ...] = ("dca", "grid", "smart", "signal")


class BotModule(Protocol):
    """What every bot package exposes (see ``sealbot.bots.base``)."""

    @property
    def KIND(self) -> str: ...

    @property
    def Config(self) -> type[BaseModel]: ...

    @property
    def State(self) -> type[Any]: ...

    def initial_state(self, config: Any) -> Any: ...

    def step(self, config: Any, state: Any, event: Event) -> tuple[Any, list[Command]]: ...

    def interest(self, config: Any, state: Any) -> Interest: ...

    def preview(self, config: Any, price: Decimal) -> Any: ...

    def dump_state(self, state: Any) -> dict[str, Any]: ...

    def load_state(self, data: dict[str, Any]) -> Any: ...


if TYPE_CHECKING:  # mypy checks that these packages really satisfy the protocol
    from sealbot.bots import grid as _grid
    from sealbot.bots import signal as _signal

    _GRID: BotModule = _grid
    _SIGNAL: BotModule = _signal


def bot_module(kind: str) -> BotModule:
    """The package of ``kind``; ``InvalidConfig("kind", ...)`` for an unknown kind,
    ``ImportError`` for a kind whose package is missing or incomplete."""
    if kind not in KINDS:
        raise InvalidConfig("kind", f"must be one of {', '.join(KINDS)}")
    module = importlib.import_module(f"sealbot.bots.{kind}")
    if not hasattr(module, "step"):
        raise ImportError(f"sealbot.bots.{kind} is not a complete bot package yet")
    return cast(BotModule, module)


def available() -> dict[str, BotModule]:
    """Every kind whose package imports (for benchmarks and listings)."""
    found: dict[str, BotModule] = {}
    for kind in KINDS:
        try:
            found[kind] = bot_module(kind)
        except ImportError:
            continue
    return found


def parse_config(kind: str, data: Mapping[str, Any]) -> BaseModel:
    """Validate ``data`` as a config of ``kind``; ``InvalidConfig`` names the field."""
    return parse_model(bot_module(kind).Config, data)


def stored_config(kind: str, data: Mapping[str, Any], bot_id: int | str) -> dict[str, Any]:
    """What a bot's row stores: ``data`` validated as a config of ``kind`` with the bot's
    own id in it, dumped typed and normalised (``"3"`` -> 3), never the raw input."""
    return parse_config(kind, {**data, "bot_id": str(bot_id)}).model_dump(mode="json")
