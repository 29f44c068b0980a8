"""Building blocks shared by the DCA bot and the smart trade (and reusable by the grid
and signal bots): market rules as config, fee-aware position accounting, the exit
executor (take-profit ladder, trailing take profit, stop loss with timeout, trailing
stop loss, move to breakeven), candle price paths, interest merging, config
validation that names the field, and JSON-safe state serialisation.

Each module does one job; bots compose them the way Hummingbot composes executors.
"""

from sealbot.bots.common.markets import FeeSpec, MarketSpec
from sealbot.bots.common.serde import dump_dataclass, load_dataclass
from sealbot.bots.common.validation import FieldError, parse_config

__all__ = ["FeeSpec", "FieldError", "MarketSpec", "dump_dataclass", "load_dataclass", "parse_config"]
