"""What a backtest produced and how it did: orders, fills, deals, equity and the figures.

Money stays Decimal (P&L, fees, funds used); the equity curve and the ratios derived
from it (drawdown, Sharpe, Sortino) are float64 arrays, because they are statistics
of a path, not amounts that become orders.

Definitions
-----------
* **equity** (quote): the account's cash flow so far plus the base it holds valued at
  each candle's close, summed over pairs. It starts at 0, so it *is* the profit and
  loss marked to market; fees are inside it (they were paid from the balances).
* **pnl**: equity at the last candle, exact. **realized_pnl**: sum of the closed
  deals' ``realized_profit``.
* **max_funds_used**: the most the bot ever needed at once, in quote: quote locked in
  open buy orders plus quote already spent and not yet got back, over all pairs, plus
  for a short the base it sold and the base its resting sells hold, valued at the
  pair's price of the moment (measured after every fill, placement and cancel; several
  pairs are assumed to share a quote).
* **capital**: ``initial_capital`` if given, else ``max_funds_used``: the base for
  ``pnl_pct``, returns and drawdown percentages.
* **max_drawdown**: the largest fall of equity from a previous peak, in quote and in %
  of ``capital + peak``.
* **time_in_market**: the share of the backtest's time span during which at least one
  deal was open.
* **sharpe / sortino**: from daily returns (equity resampled to the last value of each
  UTC day, differenced from 0 at the start, divided by capital), mean over standard deviation (Sortino:
  over the downside deviation, the root mean square of the negative returns), times
  sqrt(365) because crypto trades every day of the year. No risk-free rate. ``None``
  with fewer than two daily returns or no variation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from sealbot.backtest.data import CandleArrays
from sealbot.domain import Deal, DealStatus, Fill, Order, OrderStatus, Pair, RaiseAlert
from sealbot.domain.money import ZERO, to_text


@dataclass(slots=True)
class OrderRecord:
    """One order's life in the backtest: what was asked, what became of it."""

    client_id: str
    pair: Pair
    side: str
    type: str
    amount: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    placed_at: datetime
    status: OrderStatus = OrderStatus.PENDING
    closed_at: datetime | None = None
    fill_price: Decimal | None = None
    fee: Decimal = ZERO
    fee_currency: str | None = None
    is_maker: bool | None = None
    reason: str | None = None

    @classmethod
    def of(cls, order: Order, at: datetime) -> OrderRecord:
        return cls(
            order.client_id.text,
            order.pair,
            order.side.value,
            order.type.value,
            order.amount,
            order.price,
            order.stop_price,
            at,
        )

    def filled(self, fill: Fill) -> None:
        self.status, self.closed_at, self.fill_price = OrderStatus.FILLED, fill.at, fill.price
        self.fee, self.fee_currency, self.is_maker = fill.fee, fill.fee_currency, fill.is_maker

    def to_dict(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "pair": self.pair.symbol,
            "side": self.side,
            "type": self.type,
            "amount": _text(self.amount),
            "price": _text(self.price),
            "stop_price": _text(self.stop_price),
            "placed_at": self.placed_at.isoformat(),
            "status": self.status.value,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "fill_price": _text(self.fill_price),
            "fee": _text(self.fee),
            "fee_currency": self.fee_currency,
            "is_maker": self.is_maker,
            "reason": self.reason,
        }


@dataclass(slots=True)
class PairOutcome:
    """One pair's candles and the account's balances on it (the simulator's raw output)."""

    pair: Pair
    arrays: CandleArrays
    quote: Decimal
    base: Decimal
    balance_log: list[tuple[int, Decimal, Decimal]]
    candles_stepped: int

    def equity(self) -> pd.Series:
        """Mark-to-market equity after each candle (float, quote)."""
        arrays = self.arrays
        n = len(arrays)
        quote, base = np.zeros(n), np.zeros(n)
        if self.balance_log:
            # Balances hold from the candle they were logged at until the next log entry.
            at = np.maximum(np.array([i for i, _, _ in self.balance_log], dtype=np.int64), 0)
            q = np.array([float(v) for _, v, _ in self.balance_log])
            b = np.array([float(v) for _, _, v in self.balance_log])
            spans = np.diff(np.append(at, n))
            quote[at[0]:], base[at[0]:] = np.repeat(q, spans), np.repeat(b, spans)
        index = pd.DatetimeIndex(arrays.open_ns + arrays.step_ns, tz="UTC")
        return pd.Series(quote + base * arrays.close, index=index, name=arrays.pair.symbol)


@dataclass(slots=True)
class SimOutcome:
    """Everything one simulated bot left behind."""

    books: list[PairOutcome]
    orders: list[OrderRecord]
    fills: list[Fill]
    deals: list[Deal]
    alerts: list[RaiseAlert]
    stopped: str | None
    max_funds: Decimal
    steps: int
    state: Any = None
    balances: dict[str, Decimal] | None = None  # the account at the end, when modelled


@dataclass(frozen=True, slots=True)
class Metrics:
    pnl: Decimal
    pnl_pct: float | None
    realized_pnl: Decimal
    fees_quote: Decimal
    max_funds_used: Decimal
    capital: Decimal
    max_drawdown: float
    max_drawdown_pct: float | None
    deals_closed: int
    deals_open: int
    average_deal_duration: timedelta | None
    time_in_market: float
    sharpe: float | None
    sortino: float | None
    orders: int
    fills: int
    candles: int
    candles_stepped: int

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, Decimal):
                value = to_text(value)
            elif isinstance(value, timedelta):
                value = value.total_seconds()
            out[name] = value
        return out


@dataclass(slots=True)
class Result:
    """Everything a backtest produced. ``to_dict`` is the JSON result."""

    pairs: list[Pair]
    timeframe: str
    start: datetime
    end: datetime
    orders: list[OrderRecord]
    fills: list[Fill]
    deals: list[Deal]
    equity: pd.Series
    alerts: list[RaiseAlert]
    stopped: str | None
    metrics: Metrics
    outcomes: list[PairOutcome] = field(repr=False)
    final_state: Any = field(default=None, repr=False)  # the bot's state after the last candle
    final_balances: dict[str, Decimal] | None = None  # holdings per asset, when balances were modelled

    @property
    def drawdown(self) -> pd.Series:
        """Equity below its running peak (<= 0), quote."""
        return self.equity - self.equity.cummax().clip(lower=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pairs": [p.symbol for p in self.pairs],
            "timeframe": self.timeframe,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "metrics": self.metrics.to_dict(),
            "deals": [deal_to_dict(d) for d in self.deals],
            "orders": [o.to_dict() for o in self.orders],
            "fills": [fill_to_dict(f) for f in self.fills],
            "alerts": [{"level": a.level.value, "code": a.code, "message": a.message} for a in self.alerts],
            "stopped": self.stopped,
            "final_balances": {k: to_text(v) for k, v in self.final_balances.items()}
            if self.final_balances is not None else None,
            "equity": {
                "time": [t.isoformat() for t in self.equity.index],
                "value": [round(float(v), 10) for v in self.equity.to_numpy()],
            },
        }


def deal_to_dict(deal: Deal) -> dict[str, Any]:
    return {
        "bot": deal.bot,
        "no": deal.no,
        "pair": deal.pair.symbol,
        "direction": deal.direction.value,
        "status": deal.status.value,
        "opened_at": deal.opened_at.isoformat(),
        "closed_at": deal.closed_at.isoformat() if deal.closed_at else None,
        "close_reason": deal.close_reason.value if deal.close_reason else None,
        "bought": to_text(deal.bought),
        "spent": to_text(deal.spent),
        "sold": to_text(deal.sold),
        "received": to_text(deal.received),
        "fees_quote": to_text(deal.fees_quote),
        "realized_profit": to_text(deal.realized_profit) if deal.status is DealStatus.CLOSED else None,
    }


def fill_to_dict(fill: Fill) -> dict[str, Any]:
    return {
        "client_id": fill.client_id.text,
        "pair": fill.pair.symbol,
        "side": fill.side.value,
        "price": to_text(fill.price),
        "amount": to_text(fill.amount),
        "fee": to_text(fill.fee),
        "fee_currency": fill.fee_currency,
        "at": fill.at.isoformat(),
        "trade_id": fill.trade_id,
        "is_maker": fill.is_maker,
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else to_text(value)


def build_result(sim: SimOutcome, *, initial_capital: Decimal | None = None) -> Result:
    """One account over all pairs: equity summed per candle close, and the metrics."""
    outcomes = sim.books
    curves = [o.equity() for o in outcomes]
    equity = curves[0]
    if len(curves) > 1:  # pairs with different candle times: each holds its value until its next candle
        equity = pd.concat(curves, axis=1, sort=True).ffill().fillna(0.0).sum(axis=1)
    equity.name = "equity"
    pnl = ZERO
    for o in outcomes:
        last = len(o.arrays) - 1
        pnl += o.quote + (o.base * o.arrays.close_price(last) if last >= 0 and o.base else ZERO)
    max_funds = sim.max_funds
    capital = initial_capital if initial_capital is not None else max_funds
    deals = sorted(sim.deals, key=lambda d: (d.opened_at, d.no))
    closed = [d for d in deals if d.status is DealStatus.CLOSED]
    durations = [d.closed_at - d.opened_at for d in closed if d.closed_at is not None]
    fees_quote = sum((d.fees_quote for d in deals), ZERO)
    start = min(o.arrays.time(0) for o in outcomes if len(o.arrays))
    end = max(o.arrays.time(len(o.arrays) - 1) + timedelta(seconds=o.arrays.step_ns / 1e9) for o in outcomes)
    dd_abs, dd_pct = _max_drawdown(equity, float(capital))
    sharpe, sortino = _ratios(equity, float(capital))
    metrics = Metrics(
        pnl=pnl,
        pnl_pct=float(pnl / capital * 100) if capital else None,
        realized_pnl=sum((d.realized_profit for d in closed), ZERO),
        fees_quote=fees_quote,
        max_funds_used=max_funds,
        capital=capital,
        max_drawdown=dd_abs,
        max_drawdown_pct=dd_pct,
        deals_closed=len(closed),
        deals_open=sum(1 for d in deals if d.status is DealStatus.OPEN),
        average_deal_duration=sum(durations, timedelta()) / len(durations) if durations else None,
        time_in_market=_time_in_market(deals, start, end),
        sharpe=sharpe,
        sortino=sortino,
        orders=len(sim.orders),
        fills=len(sim.fills),
        candles=sum(len(o.arrays) for o in outcomes),
        candles_stepped=sum(o.candles_stepped for o in outcomes),
    )
    return Result(
        pairs=[o.pair for o in outcomes],
        timeframe=outcomes[0].arrays.timeframe,
        start=start,
        end=end,
        orders=sim.orders,
        fills=sim.fills,
        deals=deals,
        equity=equity,
        alerts=sim.alerts,
        stopped=sim.stopped,
        metrics=metrics,
        outcomes=outcomes,
        final_state=sim.state,
        final_balances=sim.balances,
    )


def _max_drawdown(equity: pd.Series, capital: float) -> tuple[float, float | None]:
    values = equity.to_numpy(dtype=np.float64)
    if values.size == 0:
        return 0.0, None
    peaks = np.maximum.accumulate(np.maximum(values, 0.0))
    falls = peaks - values
    worst = int(falls.argmax())
    dd = float(falls[worst])
    base = capital + float(peaks[worst])
    return dd, (dd / base * 100 if base > 0 else None)


def _ratios(equity: pd.Series, capital: float) -> tuple[float | None, float | None]:
    if capital <= 0 or equity.empty:
        return None, None
    daily = equity.resample("1D").last().ffill()
    # The first day's return is measured from the start, where equity is 0.
    returns = np.diff(np.concatenate([[0.0], daily.to_numpy(dtype=np.float64)])) / capital
    if returns.size < 2:
        return None, None
    mean, std = float(returns.mean()), float(returns.std(ddof=1))
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
    scale = math.sqrt(365)
    sharpe = mean / std * scale if std > 0 else None
    sortino = mean / downside * scale if downside > 0 else None
    return sharpe, sortino


def _time_in_market(deals: list[Deal], start: datetime, end: datetime) -> float:
    span = (end - start).total_seconds()
    if span <= 0 or not deals:
        return 0.0
    intervals = sorted((d.opened_at, d.closed_at or end) for d in deals)
    covered, cur_start, cur_end = 0.0, intervals[0][0], intervals[0][1]
    for begin, finish in intervals[1:]:
        if begin > cur_end:
            covered += (cur_end - cur_start).total_seconds()
            cur_start, cur_end = begin, finish
        else:
            cur_end = max(cur_end, finish)
    covered += (cur_end - cur_start).total_seconds()
    return min(1.0, covered / span)
