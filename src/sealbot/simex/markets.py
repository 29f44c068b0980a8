"""Market definitions and the recorded candles each market replays.

Each market replays one bundled file of real candles (src/sealbot/data/). Tick size,
lot step and minimum notional are chosen like a real exchange would list the pair and
so that price x quantity never needs more than 8 decimals: every balance simex holds
is then exact at the 8-decimal precision its APIs print.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class Bar:
    """One recorded candle, prices already on the market's tick grid."""

    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True)
class MarketSpec:
    """A listed spot market: its ids in both dialects, its filters and its data file."""

    base: str
    quote: str
    tick: Decimal
    step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    interval_s: int
    data_file: str

    @property
    def symbol(self) -> str:
        """Binance id, e.g. ``BTCUSDT``."""
        return self.base + self.quote

    @property
    def kucoin_symbol(self) -> str:
        """KuCoin id, e.g. ``BTC-USDT``."""
        return f"{self.base}-{self.quote}"

    @property
    def max_price(self) -> Decimal:
        return Decimal("1000000")


DEFAULT_MARKETS: tuple[MarketSpec, ...] = (
    MarketSpec("BTC", "USDT", Decimal("0.01"), Decimal("0.00001"), Decimal("0.00001"),
               Decimal("9000"), Decimal("5"), 60, "BTC-PERP-1m-20211231-20220107.csv.gz"),
    MarketSpec("ETH", "BTC", Decimal("0.000001"), Decimal("0.01"), Decimal("0.01"),
               Decimal("100000"), Decimal("0.0001"), 300, "ETH_BTC-5m.feather"),
    MarketSpec("XRP", "ETH", Decimal("0.00000001"), Decimal("1"), Decimal("1"),
               Decimal("9000000"), Decimal("0.01"), 60, "XRP_ETH-1m.feather"),
)


def _on_tick(value: float, tick: Decimal) -> Decimal:
    # repr() of a float is its shortest round-trip form; then snap to the tick grid,
    # which also removes binary artefacts such as 0.09947700000000001.
    return Decimal(repr(float(value))).quantize(tick, rounding=ROUND_HALF_EVEN)


@functools.lru_cache(maxsize=8)
def load_bars(data_file: str, tick: Decimal) -> tuple[Bar, ...]:
    """Read a bundled candle file (csv.gz or feather) into Decimal bars, in file order.

    Cached: every simex instance in a test run shares the parsed data.
    """
    import pandas as pd  # local: pandas is slow to import and only needed once

    path = DATA_DIR / data_file
    frame = pd.read_csv(path) if data_file.endswith(".csv.gz") else pd.read_feather(path)
    bars = []
    for o, h, low, c, v in zip(frame["open"], frame["high"], frame["low"], frame["close"], frame["volume"],
                               strict=True):
        bars.append(Bar(_on_tick(o, tick), _on_tick(h, tick), _on_tick(low, tick), _on_tick(c, tick),
                        Decimal(repr(float(v))).quantize(Decimal("0.00000001"))))
    return tuple(bars)
