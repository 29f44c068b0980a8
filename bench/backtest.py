"""Backtest speed, measured against backtesting.py, and DCA throughput.

Run: ``.venv/bin/python bench/backtest.py`` (needs the ``bench`` extra: backtesting).

Part 1, parity and speed against backtesting.py. The same simple strategy runs in both
over the bundled real BTC 1-minute week (10,080 candles):

    "dip and rebound", long only, one unit of BTC, no fees:
    * flat: when a candle closes at or below ``ref * (1 - DIP)`` buy at market, where
      ``ref`` is the price of the previous exit (the first close before any trade);
    * long: when a candle closes at or above ``entry * (1 + RISE)`` (take profit) or at
      or below ``entry * (1 - DROP)`` (stop) sell at market;
    * market orders decided on a close fill at the next candle's open in both
      frameworks (backtesting.py's default, ``trade_on_close=False``).

The script checks that both produce the same trades (entry/exit times and prices) and
P&L, then prints both runtimes (each from one run after an untimed warm-up run,
DataFrame in, result out) and their ratio. sealbot's side is a pure bot
(``step``/``interest``) run by the same simulator as every sealbot bot; it is fast
because between its levels it is not called at all.

Part 2, DCA throughput: the real sealbot DCA bot with 5 safety orders over 1,008,000
1-minute candles *synthesised* from the real week: 100 copies stitched alternately
forward and time-reversed (a reversed candle swaps open and close), so every seam is
continuous and prices stay those of the real week. Prints candles per second by wall
time and by CPU time (the run is single-threaded, so CPU time is its per-core cost even
when other processes share the machine).
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
from backtesting import Backtest, Strategy

from sealbot.backtest.data import CandleArrays, read_frame
from sealbot.backtest.simulate import run
from sealbot.bots import dca
from sealbot.bots.base import Interest
from sealbot.domain import (
    CandleClosed,
    ClientOrderId,
    Command,
    Event,
    FeeSchedule,
    Order,
    OrderFilled,
    OrderType,
    Pair,
    PlaceOrder,
    Side,
)
from sealbot.domain.evolve import evolve

DATA = Path(__file__).resolve().parents[1] / "src" / "sealbot" / "data" / "BTC-PERP-1m-20211231-20220107.csv.gz"
PAIR = Pair("BTC", "USDT")
DIP, RISE, DROP = Decimal("0.004"), Decimal("0.004"), Decimal("0.01")


# --- the strategy as a sealbot bot (pure: no I/O, no clock) -----------------------------


@dataclass(frozen=True)
class DipConfig:
    dip: Decimal = DIP
    rise: Decimal = RISE
    drop: Decimal = DROP


@dataclass(frozen=True)
class DipState:
    ref: Decimal | None = None  # price of the last exit (first close before any trade)
    entry: Decimal | None = None  # set while long
    waiting: bool = False  # a market order is on its way
    orders: int = 0


def initial_state(config: DipConfig) -> DipState:
    return DipState()


def interest(config: DipConfig, state: DipState) -> Interest:
    if state.waiting or state.ref is None:
        return Interest.ALWAYS
    if state.entry is None:
        return Interest(below=state.ref * (1 - config.dip))
    return Interest(below=state.entry * (1 - config.drop), above=state.entry * (1 + config.rise))


def step(config: DipConfig, state: DipState, event: Event) -> tuple[DipState, list[Command]]:
    if isinstance(event, CandleClosed) and not state.waiting:
        close = event.candle.close
        if state.ref is None:
            state = evolve(state, ref=close)
        if state.entry is None and close <= state.ref * (1 - config.dip):  # type: ignore[operator]
            return _market(state, Side.BUY)
        if state.entry is not None and (close >= state.entry * (1 + config.rise)
                                        or close <= state.entry * (1 - config.drop)):
            return _market(state, Side.SELL)
    elif isinstance(event, OrderFilled):
        fill = event.fill
        if fill.side is Side.BUY:
            return evolve(state, entry=fill.price, waiting=False), []
        return evolve(state, entry=None, ref=fill.price, waiting=False), []
    return state, []


def _market(state: DipState, side: Side) -> tuple[DipState, list[Command]]:
    n = state.orders + 1
    order = Order(ClientOrderId("dip", n, side.value), PAIR, side, OrderType.MARKET, Decimal(1))
    return evolve(state, waiting=True, orders=n), [PlaceOrder(order)]


def sealbot_trades(frame: pd.DataFrame) -> tuple[list[tuple[pd.Timestamp, float, pd.Timestamp, float]], float]:
    result = run(sys.modules[__name__], DipConfig(), {PAIR: frame}, fees=FeeSchedule(Decimal(0), Decimal(0)))
    fills = result.fills
    trades = []
    for buy, sell in zip(fills[0::2], fills[1::2], strict=False):
        trades.append((pd.Timestamp(buy.at), float(buy.price), pd.Timestamp(sell.at), float(sell.price)))
    return trades, float(sum((s.price - b.price for b, s in zip(fills[0::2], fills[1::2], strict=False)),
                             Decimal(0)))


# --- the same strategy in backtesting.py --------------------------------------------------


def backtesting_trades(frame: pd.DataFrame) -> tuple[list[tuple[pd.Timestamp, float, pd.Timestamp, float]], float]:
    dip, rise, drop = float(DIP), float(RISE), float(DROP)

    class DipRebound(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.first = self.data.Close[0]  # the first candle's close (next() starts later)

        def next(self) -> None:
            close = self.data.Close[-1]
            ref = self.closed_trades[-1].exit_price if self.closed_trades else self.first
            if not self.position and not self.orders:
                if close <= ref * (1 - dip):
                    self.buy(size=1)
            elif self.position:
                entry = self.trades[-1].entry_price
                if close >= entry * (1 + rise) or close <= entry * (1 - drop):
                    self.position.close()

    data = frame.set_index("open_time").rename(columns=str.capitalize)
    data.index = data.index.tz_convert(None)
    with warnings.catch_warnings():  # its notes: the last trade is still open (in both), pandas deprecations
        warnings.simplefilter("ignore")
        stats = Backtest(data, DipRebound, cash=1_000_000, commission=0.0).run()
    table = stats._trades
    trades = [(pd.Timestamp(r.EntryTime).tz_localize("UTC"), float(r.EntryPrice),
               pd.Timestamp(r.ExitTime).tz_localize("UTC"), float(r.ExitPrice)) for r in table.itertuples()]
    return trades, float(table["PnL"].sum())


# --- DCA throughput -------------------------------------------------------------------------


def stitched(frame: pd.DataFrame, copies: int) -> pd.DataFrame:
    forward = frame[["open", "high", "low", "close", "volume"]].to_numpy()
    backward = forward[::-1].copy()
    backward[:, [0, 3]] = backward[:, [3, 0]]
    data = np.concatenate([forward if k % 2 == 0 else backward for k in range(copies)])
    times = pd.date_range(frame["open_time"].iloc[0], periods=len(data), freq="1min")
    return pd.DataFrame({"open_time": times, "open": data[:, 0], "high": data[:, 1], "low": data[:, 2],
                         "close": data[:, 3], "volume": data[:, 4]})


def dca_throughput(frame: pd.DataFrame) -> None:
    config = dca.DcaConfig.model_validate(dict(
        bot_id="bench", markets=[{"pair": "BTC/USDT", "tick_size": "0.1", "step_size": "0.00001",
                                  "min_notional": "5"}],
        base_order_volume=Decimal(100), safety_order_volume=Decimal(100), max_safety_orders=5,
        active_safety_orders_count=5, safety_order_step_percentage=Decimal(1), take_profit=Decimal(1),
    ))
    arrays = CandleArrays(PAIR, "1m", frame, Decimal("0.1"))
    started, cpu = time.perf_counter(), time.process_time()
    result = run(dca, config, {PAIR: arrays})
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    m = result.metrics
    print(f"DCA bot, 5 safety orders (all active), TP 1 %, SO step 1 %, 0.1 % fees, over {len(frame):,} "
          "1m candles SYNTHESISED from the real BTC week (100 copies stitched forward/time-reversed):")
    print(f"  {elapsed:.3f} s wall = {len(frame) / elapsed:,.0f} candles/s; {cpu:.3f} s CPU = "
          f"{len(frame) / cpu:,.0f} candles/s per core (one process, one thread)")
    print(f"  {m.deals_closed} deals closed, {m.fills} fills, {m.candles_stepped:,} candles stepped "
          "(the rest skipped by interest)")


def main() -> int:
    frame = read_frame(DATA)
    print(f"Parity: 'dip and rebound' (dip {DIP}, rise {RISE}, drop {DROP}) over the real BTC week, "
          f"{len(frame):,} 1m candles")
    sealbot_trades(frame)  # warm-up (first-call costs: imports, caches), for both, untimed
    backtesting_trades(frame)
    started, cpu = time.perf_counter(), time.process_time()
    ours, our_pnl = sealbot_trades(frame)
    ours_s, ours_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    theirs, their_pnl = backtesting_trades(frame)
    theirs_s, theirs_cpu = time.perf_counter() - started, time.process_time() - cpu
    same = ours == theirs and abs(our_pnl - their_pnl) < 1e-6
    print(f"  sealbot:        {len(ours)} closed trades, P&L {our_pnl:.2f}, {ours_s * 1000:.1f} ms wall, "
          f"{ours_cpu * 1000:.1f} ms CPU")
    print(f"  backtesting.py: {len(theirs)} closed trades, P&L {their_pnl:.2f}, {theirs_s * 1000:.1f} ms wall, "
          f"{theirs_cpu * 1000:.1f} ms CPU")
    print(f"  same trades: {'yes' if same else 'NO'}; sealbot is {theirs_s / ours_s:.1f}x faster by wall time, "
          f"{theirs_cpu / ours_cpu:.1f}x by CPU time (one timed run each after one warm-up run, "
          "DataFrame in, result out)")
    if not same:
        for a, b in zip(ours, theirs, strict=False):
            if a != b:
                print(f"  first difference: sealbot {a} vs backtesting.py {b}")
                break
    print()
    dca_throughput(stitched(frame, 100))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
