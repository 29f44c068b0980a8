"""The DCA bot: long or short, single- or multi-pair, with 3Commas-compatible settings.

Module-level contract shared by every bot kind: ``KIND``, ``Config``, ``State``,
``initial_state``, ``step``, ``interest``, ``preview``, ``dump_state``, ``load_state``.
"""

from sealbot.bots.dca.bot import initial_state, interest, step
from sealbot.bots.dca.config import (
    CustomSafetyStep,
    DcaConfig,
    ProfitCurrency,
    RsiCondition,
    StartCondition,
    StopLossType,
    TakeProfitStep,
    TakeProfitType,
)
from sealbot.bots.dca.preview import DcaPreview, PreviewRow, preview
from sealbot.bots.dca.state import DcaDeal, DcaState, dump_state, load_state

KIND = "dca"
Config = DcaConfig
State = DcaState

__all__ = [
    "KIND",
    "Config",
    "CustomSafetyStep",
    "DcaConfig",
    "DcaDeal",
    "DcaPreview",
    "DcaState",
    "PreviewRow",
    "ProfitCurrency",
    "RsiCondition",
    "StartCondition",
    "State",
    "StopLossType",
    "TakeProfitStep",
    "TakeProfitType",
    "dump_state",
    "initial_state",
    "interest",
    "load_state",
    "preview",
    "step",
]
