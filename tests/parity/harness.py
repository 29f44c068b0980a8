"""Run one bot configuration twice over the same recorded candles: through the
backtester (``backtest.simulate.run``) and through the engine trading on simex's replay
with the unmodified ccxt Binance client, and put both outcomes in one comparable shape.

Alignment (docs/parity.md says why each is needed):

* **Candles.** simex replays the bundled BTC file row ``k`` as the candle opening at
  ``start_ms + k * 60 s``; with ``start_ms`` = the file's first open time (the file has
  no gaps) simex's candles are the file's, so the backtester gets rows ``0..n-1``.
* **The exchange model.** The backtester runs with simex's market rules (``RULES``),
  book and fees: ``spread_ticks`` as simex's, ``fee_decimals=8``,
  ``react="segment_end"`` and ``point_times="quarters"``. The simex account is funded far beyond what the bots use;
  the backtester runs without modelled balances (the engine sends bots no
  ``BalanceReported``, which ``balances=`` would) and its final holdings are the same
  starting ``BALANCES`` plus its flows.
* **Steps.** The engine starts at ``start_ms`` and the clock moves one path point (a
  quarter minute) at a time; after each point the engine fetches what filled and
  answers it, so it reacts at the end of the path segment where a fill happened, as
  ``react="segment_end"`` makes the backtester do. At each next open the engine hears
  of the close after simex traded the gap, sends the bot's decisions, then polls: the
  order ``react="segment_end"`` gives the backtester's opens too.
* **Times.** simex holds each of a candle's four path points a quarter of the minute
  (0, 15, 30, 45 s); the backtester stamps them so too (``point_times="quarters"``;
  its default is thirds: 20, 40, 60 s), so times are compared exactly — which matters
  beyond the records: a cooldown counts from the fill's time.
* **The end.** The engine hears of the last candle's close with simex's clock 1 ms
  before the next open, so simex trades nothing of the candle the backtester does not
  have; the window must not end on a decision (an order decided on the last close
  reaches the backtester's book never, simex's at once): ``backtest`` refuses a window
  ending on new orders (a cancel decided there would show as a different final order
  status).
* **Polling.** By default fills are fetched after a point only when simex traded
  something for the account or a market order went out (otherwise the fetch finds
  nothing); ``poll_every_point=True`` fetches after every point, and a test checks
  the shortcut changes nothing.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from engine.simex_env import SimexTime, simex_venue
from sealbot.backtest.data import load_candles
from sealbot.backtest.simulate import run
from sealbot.bots.registry import bot_module, parse_config
from sealbot.domain import Deal, Fill, MarketRules, OrderStatus, Pair
from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.journal import AccountRecord, BotRecord, MemoryJournal
from sealbot.engine.runner import InProcessRunner, RunnerSettings
from sealbot.simex import SimexServer
from sealbot.simex.core import Trade
from sealbot.simex.markets import DATA_DIR
from sealbot.venues.base import Venue

BTC_FILE = "BTC-PERP-1m-20211231-20220107.csv.gz"
PAIR = Pair("BTC", "USDT")
MARKET = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}
XRP_FILE = "XRP_ETH-1m.feather"  # simex's second one-minute market (a second pair for multi-pair bots)
XRP_PAIR = Pair("XRP", "ETH")
XRP_MARKET = {"pair": "XRP/ETH", "tick_size": "0.00000001", "step_size": "1", "min_notional": "0.01"}
MINUTE_MS = 60_000
QUARTER_MS = MINUTE_MS // 4  # simex holds each path point this long
EXCHANGE_DECIMALS = 8  # simex (like Binance) keeps balances and fees at 8 decimals
# The exchange's rules for the market, given to the backtester as simex lists them (a
# bot config need not carry them: the smart trade's does not expose ``rules``).
RULES = MarketRules(PAIR, Decimal("0.01"), Decimal("0.00001"), min_amount=Decimal("0.00001"),
                    max_amount=Decimal("9000"), min_notional=Decimal("5"))
XRP_RULES = MarketRules(XRP_PAIR, Decimal("0.00000001"), Decimal("1"), min_amount=Decimal("1"),
                        max_amount=Decimal("9000000"), min_notional=Decimal("0.01"))
FILES = {PAIR: BTC_FILE, XRP_PAIR: XRP_FILE}
ALL_RULES = {PAIR: RULES, XRP_PAIR: XRP_RULES}
# The simex account: far more quote and base than any bot here uses, so nothing is
# refused for funds. The backtester runs without modelled balances (the engine does not
# report balances to bots, and ``balances=`` would send ``BalanceReported``); its
# holdings at the end are these plus the run's flows.
BALANCES = {"USDT": Decimal("1000000"), "BTC": Decimal("10"), "ETH": Decimal("1000"), "XRP": Decimal("1000000")}


@dataclass(frozen=True)
class FillView:
    """One fill as both sides state it."""

    pair: str
    client_id: str
    side: str
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_currency: str
    is_maker: bool
    at: datetime


@dataclass(frozen=True)
class DealView:
    """A deal's outcome."""

    no: int
    status: str
    close_reason: str | None
    opened_at: datetime
    closed_at: datetime | None
    bought: Decimal
    spent: Decimal
    sold: Decimal
    received: Decimal
    fees_quote: Decimal
    realized: Decimal


@dataclass(frozen=True)
class OrderView:
    """An order as the bot asked for it and where it ended."""

    client_id: str
    side: str
    type: str
    amount: Decimal
    price: Decimal | None
    status: str


@dataclass(frozen=True)
class Outcome:
    """One side's run. ``fills`` are in execution order (the exchange's trade ids on the
    engine side); ``journal_fills`` what the engine recorded (the backtester's fills
    again on its side); ``balances`` the account's holdings at the end (free + locked);
    ``pnl`` is the change of the account's value at the last close per quote currency,
    ``realized`` the closed deals' profit."""

    fills: list[FillView]
    journal_fills: list[FillView]
    deals: list[DealView]
    orders: list[OrderView]
    balances: dict[str, Decimal]
    pnl: dict[str, Decimal]
    realized: Decimal


def fill_view(fill: Fill) -> FillView:
    return FillView(str(fill.pair), fill.client_id.text, str(fill.side), fill.price, fill.amount, fill.fee,
                    fill.fee_currency, fill.is_maker, fill.at)


def trade_view(trade: Trade, client_id: str, pair: Pair) -> FillView:
    side = trade.side.lower()
    at = datetime.fromtimestamp(trade.time_ms / 1000, UTC)
    return FillView(str(pair), client_id, side, trade.price, trade.qty, trade.commission, trade.commission_asset,
                    trade.is_maker, at)


def deal_view(deal: Deal) -> DealView:
    closed = deal.closed_at
    reason = str(deal.close_reason) if deal.close_reason is not None else None
    return DealView(deal.no, str(deal.status), reason, deal.opened_at, closed, deal.bought, deal.spent, deal.sold,
                    deal.received, deal.fees_quote, deal.realized_profit)


def candles(n: int, pair: Pair = PAIR) -> pd.DataFrame:
    """The first ``n`` rows of the pair's bundled file as simex replays them from
    ``start_ms``: row ``k`` is the candle opening ``k`` minutes after it. (simex closes up
    a file's gaps; the BTC file has none, so its times are its own; the XRP/ETH file's
    rows are re-timed the same way.)"""
    frame = _recorded(pair).iloc[:n].reset_index(drop=True).copy()
    first = pd.Timestamp(_recorded(PAIR)["open_time"].iloc[0])
    frame["open_time"] = [first + pd.Timedelta(minutes=k) for k in range(len(frame))]
    return frame


@functools.cache
def _recorded(pair: Pair) -> pd.DataFrame:
    frame, _ = load_candles(DATA_DIR / FILES[pair])
    return frame


def start_ms() -> int:
    first = candles(1)["open_time"].iloc[0]
    return int(pd.Timestamp(first).timestamp() * 1000)


def _value_change(balances: dict[str, Decimal], closes: dict[Pair, Decimal]) -> dict[str, Decimal]:
    """Per quote currency: its change plus each of its pairs' base change at the last close."""
    change: dict[str, Decimal] = {}
    for pair, close in closes.items():
        base = (balances[pair.base] - BALANCES[pair.base]) * close
        change[pair.quote] = change.get(pair.quote, balances[pair.quote] - BALANCES[pair.quote]) + base
    return change


def _realized(deals: list[DealView]) -> Decimal:
    return sum((d.realized for d in deals if d.status == "closed"), Decimal(0))


def fees_of(config: dict[str, Any]) -> tuple[Decimal, Decimal]:
    fees = config.get("fees") or {}
    return Decimal(str(fees.get("maker", "0.001"))), Decimal(str(fees.get("taker", "0.001")))


def backtest(kind: str, config: dict[str, Any], n: int, *, spread_ticks: int,
             pairs: tuple[Pair, ...] = (PAIR,)) -> Outcome:
    """The backtester over rows 0..n-1 (of each pair) with simex's spread, fee precision
    and reaction timing, on the same account."""
    frames = {pair: candles(n, pair) for pair in pairs}
    result = run(bot_module(kind), parse_config(kind, config), frames, rules={p: ALL_RULES[p] for p in pairs},
                 spread_ticks=spread_ticks, fee_decimals=EXCHANGE_DECIMALS, react="segment_end",
                 point_times="quarters")
    pending = [o.client_id for o in result.orders if o.status is OrderStatus.PENDING]
    if pending:
        raise ValueError(f"n: the window ends on a decision ({pending} wait for a next open); pick another n")
    fills = [fill_view(f) for f in result.fills]
    deals = [deal_view(d) for d in sorted(result.deals, key=lambda d: d.no)]
    orders = [OrderView(o.client_id, o.side, o.type, o.amount, o.price, str(o.status)) for o in result.orders]
    balances = dict(BALANCES)
    for flows in result.outcomes:
        balances[flows.pair.base] += flows.base
        balances[flows.pair.quote] += flows.quote
    pnl = _value_change(balances, {p: Decimal(repr(float(f["close"].iloc[-1]))) for p, f in frames.items()})
    if len(pairs) == 1:  # the backtester's own P&L is the account's change of value
        assert pnl == {pairs[0].quote: result.metrics.pnl}
    return Outcome(fills, fills, deals, orders, balances, pnl, _realized(deals))


async def engine(kind: str, config: dict[str, Any], n: int, *, spread_ticks: int,
                 poll_every_point: bool = False, pairs: tuple[Pair, ...] = (PAIR,)) -> Outcome:
    """The engine on simex over the same candles: the engine hears of candle ``n-1``'s
    close (the backtester's last ``CandleClosed``) and of every fill up to then."""
    maker, taker = fees_of(config)
    with SimexServer(speed=0, start_ms=start_ms(), spread_ticks=spread_ticks, maker_fee=maker, taker_fee=taker,
                     # simex counts request weight per *wall-clock* minute; this run squeezes a
                     # simulated hour into seconds of wall time, so the limit is lifted (the
                     # engine's own budget runs on the simulated clock and stays in force)
                     weight_limit=10**9) as sx:
        exchange = sx.exchange
        assert exchange is not None
        account = sx.admin.create_account("parity", {asset: str(amount) for asset, amount in BALANCES.items()})
        key = sx.admin.create_key(account["id"])
        journal = MemoryJournal()
        journal.add_account(AccountRecord("1", "1", "binance"))
        with journal.transaction() as tx:
            tx.save_bot(BotRecord(config["bot_id"], "1", "1", kind, config, None))
        clock = SimexTime(exchange.clock.now_ms())

        async def factory(_a: AccountRecord) -> Venue:
            venue = simex_venue(sx.base_url, key["key"], key["secret"])
            # ccxt's own client-side throttle spaces requests in real time (Binance: 50 ms
            # a weight unit); the market here runs on simex's manual clock, and the engine
            # keeps its own budgets, so the throttle would only make the test slow.
            venue._exchange.enableRateLimit = False
            return venue

        # The guard's volume floor and daily notional cap are policy, not fill mechanics:
        # lifted so that a long window trades as the backtester (which has no guard) does.
        guard = GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0), max_daily_notional=None))
        # The harness polls only when something traded (no poller task), so a quiet stretch
        # of hours never refreshes the reference price: it must not go stale meanwhile.
        runner = InProcessRunner(journal, factory, guard=guard, clock=clock,
                                 settings=RunnerSettings(background=False, market_ttl=3600, market_max_age=10**9))
        await runner.start_account("1")
        acc = runner.accounts["1"]
        trades = exchange.trades_by_account[account["id"]]  # every market's, in execution order
        seen = 0

        async def settle() -> None:
            nonlocal seen
            # Poll until quiet: a fill's reaction may itself fill at once (a market order).
            first = poll_every_point
            while True:
                await acc.drain()
                if not first and len(trades) == seen and not acc.poll_due:
                    return
                first, seen = False, len(trades)
                await acc.poll_once()
                await acc.drain()

        switch = sys.getswitchinterval()
        # simex serves from a thread of this process: hand the GIL over quickly, or every
        # request waits out the default 5 ms switch interval
        sys.setswitchinterval(0.0002)
        try:
            for minute in range(n):
                for _quarter in range(3):  # open -> first -> second -> close: one segment each
                    clock.ms = exchange.clock.advance(QUARTER_MS / 1000)
                    exchange.sync()
                    await settle()
                last = minute == n - 1
                # The next open: the candle has closed. Polling the feed (simex trades the
                # gap as it answers), the engine hears the close and sends what the bot
                # decides; settle() then hears of the fills. After the last candle simex
                # stops 1 ms short of the next open, so that gap (not in the backtest) stays
                # untraded.
                next_open = exchange.clock.now_ms() + QUARTER_MS
                exchange.clock.set(next_open - 1 if last else next_open)
                clock.ms = next_open
                await runner.poll_feeds_once()
                await acc.drain()
                exchange.sync()
                await settle()
            closes = {pair: exchange.price(pair.base + pair.quote) for pair in pairs}
        finally:
            sys.setswitchinterval(switch)
            await runner.stop()
        data = journal.data
        by_order = {o.id: o.client_id for o in exchange.all_orders(account["id"])}
        symbols = {pair.base + pair.quote: pair for pair in pairs}
        ledger = [trade_view(t, by_order[t.order_id], symbols[t.symbol]) for t in trades]
        journal_fills = [fill_view(f) for f in data.fills.values()]
        deals = [deal_view(d) for _, d in sorted(data.deals.items(), key=lambda kv: kv[0][1])]
        orders = [OrderView(e.order.client_id.text, str(e.order.side), str(e.order.type), e.order.amount,
                            e.order.price, str(e.order.status)) for e in data.orders.values()]
        held = exchange.account(account["id"]).balances
        balances = {asset: held[asset].free + held[asset].locked for asset in BALANCES}
        return Outcome(ledger, journal_fills, deals, orders, balances, _value_change(balances, closes),
                       _realized(deals))
