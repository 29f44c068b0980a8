"""Request weight the guard's reference prices cost: N accounts on one pair, per minute.

    .venv/bin/python bench/ref_prices.py [--accounts 1000] [--pairs 1] [--ttl 30] [--poll 2] [--minutes 2]

Each account is a real ``AccountRunner`` with one DCA bot per pair, driven through
``poll_once`` every ``--poll`` seconds of a simulated clock (what its poller task does):
each poll refreshes the guard's market data, which asks the venue for a ticker and 24
hourly candles of every pair whose price is older than ``--ttl``. The accounts' venues
stand for N keys on one Binance endpoint; every request is charged Binance spot's
published weight (``engine.budgeted.BINANCE_WEIGHTS``: ticker 2, klines 2).

Two runs: ``per account`` (every account keeps its own prices, as the engine did before
``engine.market.ReferencePrices``) and ``shared`` (one source per venue and pair, as the
engine runs now). Printed: market-data requests and weight per minute, against the
6,000 a Binance IP may spend per minute. The figures are counts, not timings: they do
not depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sealbot.domain import Candle, MarketRules, Pair
from sealbot.engine.budgeted import BINANCE_WEIGHTS
from sealbot.engine.candles import FeedHub
from sealbot.engine.clock import FakeClock
from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.journal import AccountRecord, BotRecord, MemoryJournal
from sealbot.engine.market import ReferencePrices
from sealbot.engine.runner import AccountRunner, RunnerSettings
from sealbot.venues.base import Ticker
from sealbot.venues.paper import PaperVenue

PAIRS = [Pair("BTC", "USDT"), Pair("ETH", "USDT"), Pair("SOL", "USDT"), Pair("BNB", "USDT"), Pair("XRP", "USDT")]
IP_LIMIT = 6000


class _Endpoint:
    """What ccxt exposes of an exchange object that says where it is reached."""

    urls = {"api": {"public": "https://api.binance.com/api/v3", "private": "https://api.binance.com/api/v3"}}


class CountingVenue(PaperVenue):
    """One account's key on Binance: market data requests are counted with their weight."""

    def __init__(self, counts: Counter[str], clock: FakeClock, pairs: list[Pair]) -> None:
        super().__init__({p: MarketRules(p, Decimal("0.01"), Decimal("0.00001")) for p in pairs},
                         {"USDT": Decimal(1000)}, clock=clock.now, name="binance")
        self.counts, self.exchange = counts, _Endpoint()

    async def fetch_ticker(self, pair: Pair) -> Ticker:
        self.counts["fetch_ticker"] += 1
        return Ticker(pair, Decimal(100), Decimal(101), Decimal(100), self._clock())

    async def fetch_candles(self, pair: Pair, timeframe: str, since: datetime | None = None,
                            limit: int | None = None) -> list[Candle]:
        self.counts["fetch_candles"] += 1
        return []


def dca(bot_id: str, pair: Pair) -> dict[str, Any]:
    return {"bot_id": bot_id, "markets": [{"pair": pair.symbol, "tick_size": "0.01", "step_size": "0.00001",
                                           "min_notional": "5"}],
            "base_order_volume": "20", "safety_order_volume": "20", "max_safety_orders": 3,
            "safety_order_step_percentage": "1", "take_profit": "1"}


async def run(accounts: int, pairs: list[Pair], ttl: float, poll: float, minutes: float,
              shared: bool) -> dict[str, float]:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    journal, hub, counts = MemoryJournal(), FeedHub("1m"), Counter[str]()
    guard = GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0)))
    settings = RunnerSettings(poll_feeds=False, background=False, market_ttl=ttl)
    prices = ReferencePrices(clock, ttl=ttl) if shared else None
    runners: list[AccountRunner] = []
    for a in range(accounts):
        account = AccountRecord(str(a), f"user{a}", "binance")
        journal.add_account(account)
        with journal.transaction() as tx:
            for k, pair in enumerate(pairs):
                tx.save_bot(BotRecord(f"{a}x{k}", account.user, account.id, "dca", dca(f"{a}x{k}", pair), None))
        runner = AccountRunner(account, CountingVenue(counts, clock, pairs), journal, guard=guard, hub=hub,
                               clock=clock, settings=settings, prices=prices)
        await runner.start()
        runners.append(runner)
    counts.clear()  # steady state: what the accounts spend once they run
    ticks = round(minutes * 60 / poll)
    for _ in range(ticks):
        clock.advance(poll)
        await asyncio.gather(*(runner.poll_once() for runner in runners))
    weight = sum(BINANCE_WEIGHTS[what] * n for what, n in counts.items())
    span = ticks * poll / 60
    return {"requests_per_min": sum(counts.values()) / span, "weight_per_min": weight / span}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=1, choices=range(1, len(PAIRS) + 1))
    parser.add_argument("--ttl", type=float, default=30.0, help="market_ttl: seconds a reference price stays fresh")
    parser.add_argument("--poll", type=float, default=2.0, help="poll_interval: seconds between an account's polls")
    parser.add_argument("--minutes", type=float, default=2.0, help="simulated minutes to count over")
    args = parser.parse_args()
    pairs = PAIRS[:args.pairs]
    print(f"{args.accounts} accounts, {len(pairs)} pair(s), market_ttl {args.ttl:g} s, poll every {args.poll:g} s, "
          f"{args.minutes:g} simulated min; Binance IP limit {IP_LIMIT} weight/min")
    for shared in (False, True):
        result = asyncio.run(run(args.accounts, pairs, args.ttl, args.poll, args.minutes, shared))
        label = "shared     " if shared else "per account"
        print(f"{label}: {result['requests_per_min']:9.1f} market-data requests/min, "
              f"{result['weight_per_min']:9.1f} weight/min ({100 * result['weight_per_min'] / IP_LIMIT:.1f} % of "
              f"the IP's limit)")


if __name__ == "__main__":
    main()
