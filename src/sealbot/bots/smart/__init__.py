"""Smart trade: one position with limit, market, conditional or trailing entry, a
take-profit ladder with optional trailing, stop loss (trailing, breakeven, timeout),
a trade timeout and close on request. Same module contract as every bot kind."""

from sealbot.bots.smart.bot import exit_settings, initial_state, interest, step
from sealbot.bots.smart.config import EntryType, SmartTarget, SmartTradeConfig, Trigger
from sealbot.bots.smart.preview import SmartPreview, TargetRow, preview
from sealbot.bots.smart.state import SmartState, Stage, dump_state, load_state

KIND = "smart"
Config = SmartTradeConfig
State = SmartState

__all__ = [
    "KIND",
    "Config",
    "EntryType",
    "SmartPreview",
    "SmartState",
    "SmartTarget",
    "SmartTradeConfig",
    "Stage",
    "State",
    "TargetRow",
    "Trigger",
    "dump_state",
    "exit_settings",
    "initial_state",
    "interest",
    "load_state",
    "preview",
    "step",
]
