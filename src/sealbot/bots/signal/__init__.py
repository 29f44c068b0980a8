"""Signal bot: enters and exits positions when (TradingView) signals arrive.

Exposes the bot contract: ``KIND``, ``Config``, ``State``, ``initial_state``, ``step``,
``interest``, ``preview``, ``dump_state``, ``load_state``. Parsing of the HTTP bodies
lives in ``sealbot.bots.signals``.
"""

from sealbot.bots.signal.config import Config, parse_config
from sealbot.bots.signal.machine import initial_state, interest, step
from sealbot.bots.signal.preview import EntryPreview, preview
from sealbot.bots.signal.state import Balance, Position, State, dump_state, load_state

KIND = "signal"

__all__ = ["KIND", "Balance", "Config", "EntryPreview", "Position", "State", "dump_state", "initial_state",
           "interest", "load_state", "parse_config", "preview", "step"]
