"""Grid bot: buys at each line of a price grid and sells one line up, cycle after cycle.

Exposes the bot contract (see ``sealbot.bots.base``): ``KIND``, ``Config``, ``State``,
``initial_state``, ``step``, ``interest``, ``preview``, ``dump_state``, ``load_state``.
"""

from sealbot.bots.grid.config import Config, GridType, OrderCurrency, StopAction, parse_config
from sealbot.bots.grid.levels import level_price, levels
from sealbot.bots.grid.machine import initial_state, interest, step
from sealbot.bots.grid.preview import GridPreview, IntervalPreview, preview
from sealbot.bots.grid.state import Phase, Slot, State, dump_state, load_state

KIND = "grid"

__all__ = [
    "KIND",
    "Config",
    "GridPreview",
    "GridType",
    "IntervalPreview",
    "OrderCurrency",
    "Phase",
    "Slot",
    "State",
    "StopAction",
    "dump_state",
    "initial_state",
    "interest",
    "level_price",
    "levels",
    "load_state",
    "parse_config",
    "preview",
    "step",
]
