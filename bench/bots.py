"""Events per second through each bot kind's ``step``.

Run: ``.venv/bin/python bench/bots.py``

Every bot kind that exists is driven over the bundled real BTC 1-minute week
(10,080 candles, read as BTC/USDT), repeated ``REPEAT`` times alternately forward and
time-reversed so the path stays continuous. A minimal exchange fills limit orders the
candle trades through and market orders at the close, and feeds the fills back as
events. Two figures per kind:

* ``all candles``: every candle is delivered, so the figure is the raw cost of
  ``step`` (events/s counts candles, fills and cancels alike);
* ``interest``: only candles that touch the bot's ``interest`` are delivered, as the
  backtester does; the figure is candles of market data covered per second.

One core, one process, Python's ``decimal`` (C implementation).
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from sealbot.bots.common.paths import touches
from sealbot.domain import (
    CancelOrder,
    Candle,
    CandleClosed,
    ClientOrderId,
    Command,
    Event,
    Fill,
    Order,
    OrderCanceled,
    OrderFilled,
    OrderType,
    Pair,
    PlaceOrder,
    Side,
    SignalAction,
    SignalReceived,
)
from sealbot.domain.evolve import evolve

DATA = Path(__file__).resolve().parents[1] / "src/sealbot/data/BTC-PERP-1m-20211231-20220107.csv.gz"
PAIR = Pair("BTC", "USDT")
REPEAT = int(sys.argv[1]) if len(sys.argv) > 1 else 3
FEE = Decimal("0.001")


def load_candles() -> list[Candle]:
    frame = pd.read_csv(DATA)
    rows = list(frame.itertuples(index=False))
    base = [
        Candle(PAIR, "1m", pd.Timestamp(r.timestamp, tz="UTC").to_pydatetime(), Decimal(str(r.open)),
               Decimal(str(r.high)), Decimal(str(r.low)), Decimal(str(r.close)), Decimal(str(r.volume)))
        for r in rows
    ]  # fmt: skip
    out: list[Candle] = []
    start = base[0].open_time
    for k in range(REPEAT):
        seq = base if k % 2 == 0 else [evolve(c, open=c.close, close=c.open) for c in reversed(base)]
        for c in seq:
            out.append(evolve(c, open_time=start + timedelta(minutes=len(out))))
    return out


@dataclass
class Exchange:
    open: dict[ClientOrderId, Order] = field(default_factory=dict)
    trades: int = 0

    def fill(self, order: Order, price: Decimal, candle: Candle) -> OrderFilled:
        self.trades += 1
        fee, currency = (
            (order.amount * FEE, PAIR.base) if order.side is Side.BUY else (order.amount * price * FEE, PAIR.quote)
        )
        fill = Fill(
            order.client_id, PAIR, order.side, price, order.amount, fee, currency, candle.close_time, f"t{self.trades}"
        )
        return OrderFilled(fill, Decimal(0))

    def submit(self, commands: list[Command], candle: Candle) -> list[Event]:
        out: list[Event] = []
        for c in commands:
            if isinstance(c, PlaceOrder):
                if c.order.type is OrderType.MARKET:
                    out.append(self.fill(c.order, candle.close, candle))
                else:
                    self.open[c.order.client_id] = c.order
            elif isinstance(c, CancelOrder) and c.client_id in self.open:
                del self.open[c.client_id]
                out.append(OrderCanceled(c.client_id, candle.close_time))
        return out

    def trade_through(self, candle: Candle) -> list[Event]:
        out: list[Event] = []
        for cid, o in list(self.open.items()):
            assert o.price is not None
            if (o.side is Side.BUY and candle.low <= o.price) or (o.side is Side.SELL and candle.high >= o.price):
                del self.open[cid]
                out.append(self.fill(o, o.price, candle))
        return out


def bench(module: Any, config: Any, candles: list[Candle], skip: bool,
          extra: Callable[[int, Candle], list[Event]] | None = None) -> tuple[int, float, int]:  # fmt: skip
    """(events through step, seconds, trades)."""
    state = module.initial_state(config)
    exchange = Exchange()
    events = 0
    t0 = time.perf_counter()
    for i, candle in enumerate(candles):
        queue = exchange.trade_through(candle)
        if extra is not None:
            queue += extra(i, candle)
        if not skip or touches(module.interest(config, state), candle):
            queue.append(CandleClosed(candle))
        while queue:
            event = queue.pop(0)
            events += 1
            state, commands = module.step(config, state, event)
            queue += exchange.submit(commands, candle)
    return events, time.perf_counter() - t0, exchange.trades


def kinds() -> list[tuple[str, Any, Any, Callable[[int, Candle], list[Event]] | None]]:
    market = {"pair": "BTC/USDT", "tick_size": "0.1", "step_size": "0.00001", "min_notional": "5"}
    out: list[tuple[str, Any, Any, Callable[[int, Candle], list[Event]] | None]] = []
    from sealbot.bots import dca, smart

    out.append(("dca", dca, dca.DcaConfig.model_validate({
        "bot_id": "bench", "markets": [market], "base_order_volume": "100", "safety_order_volume": "200",
        "safety_order_step_percentage": "0.5", "max_safety_orders": 5, "active_safety_orders_count": 2,
        "martingale_volume_coefficient": "1.5", "martingale_step_coefficient": "1.2", "take_profit": "0.6",
        "stop_loss_percentage": "6", "tsl_enabled": True,
    }), None))  # fmt: skip
    out.append(("smart", smart, smart.SmartTradeConfig.model_validate({
        "bot_id": "bench", "market": market, "volume": "1000", "entry_type": "trailing", "entry_price": "47000",
        "entry_trailing_deviation": "0.5", "stop_loss_percentage": "3", "tsl_enabled": True,
        "take_profit_steps": [{"amount_percentage": "50", "profit_percentage": "2"},
                              {"amount_percentage": "50", "profit_percentage": "4"}],
        "trailing_enabled": True, "trailing_deviation": "0.5",
    }), None))  # fmt: skip
    try:
        grid = importlib.import_module("sealbot.bots.grid")
        out.append(("grid", grid, grid.Config.model_validate({
            "bot_id": "bench", "market": market, "lower_price": "40000", "upper_price": "49000",
            "grids_quantity": 40, "investment": "10000", "order_currency_type": "quote",
        }), None))  # fmt: skip
    except Exception as exc:
        print(f"grid: skipped ({type(exc).__name__}: {exc})")
    try:
        signal = importlib.import_module("sealbot.bots.signal")
        config = signal.Config.model_validate({"bot_id": "bench", "markets": [market], "amount": "100",
                                               "max_signal_age_seconds": None})  # fmt: skip

        def signals(i: int, candle: Candle) -> list[Event]:
            if i % 30:
                return []
            action = SignalAction.ENTER_LONG if (i // 30) % 2 == 0 else SignalAction.EXIT_LONG
            return [SignalReceived(f"s{i}", action, candle.open_time, pair=PAIR, trigger_price=candle.open)]

        out.append(("signal", signal, config, signals))
    except Exception as exc:
        print(f"signal: skipped ({type(exc).__name__}: {exc})")
    return out


def main() -> None:
    candles = load_candles()
    print(f"{len(candles):,} real 1m candles (BTC week x{REPEAT}), Python {sys.version.split()[0]}")
    print(f"{'kind':8} {'mode':12} {'events':>10} {'seconds':>8} {'events/s':>10} {'candles/s':>10} {'trades':>7}")
    for name, module, config, extra in kinds():
        for skip in (False, True):
            events, seconds, trades = bench(module, config, candles, skip, extra)
            mode = "interest" if skip else "all candles"
            print(f"{name:8} {mode:12} {events:>10,} {seconds:>8.2f} {events / seconds:>10,.0f} "
                  f"{len(candles) / seconds:>10,.0f} {trades:>7,}")  # fmt: skip


if __name__ == "__main__":
    main()
