"""Engine throughput: N DCA bots in one process fed by one replayed candle stream.

    .venv/bin/python bench/engine.py [--bots 100 1000 10000] [--candles 1500] [--per-account 100]
                                     [--sequential] [--default-gc] [--cpu] [--signals 0]
                                     [--journal memory|sqlite|postgresql://...]

Each bot is a real DCA bot (market base order, 3 safety orders, take profit 1.0-1.9 %, staggered cooldowns) on
BTC/USDT, on paper accounts of ``--per-account`` bots each, all subscribed to the same
(exchange, pair) stream through the engine's FeedHub (a replay publishes by exchange
name, so with ``poll_feeds`` off the hub keys it so): one stream, fanned out. Candles
are the bundled real BTC 1m prices. Each replayed candle goes to the hub, every
account's queue is drained (bot steps, guard, journal, orders to the paper venue), the
paper venue matches on the candle's close and each account polls its fills.

Also: signal-to-order latency, a signal event handed to the runner -> the order
acknowledged by simex over loopback HTTP (signal bot, guard, SQLite journal, signed
ccxt request), p50/p99 over ``--signals`` samples.

Printed: events/s (candle-bot pairs handled per second of wall time: each candle is
offered to every bot's trigger in the hub's index, and reaches only the bots it wakes),
p50/p99 lag from a candle's publication to the moment the journal transaction holding
a command's order intent committed (per command; commands a bot produced on a fill are
not candle lag), the same over every candle but the first ("st.": steady state; on the
first candle every bot opens its first deal at once), and resident memory per bot (RSS
growth / N). Per candle, the stream reaches every account's bots first, the accounts
drained concurrently as the engine's account workers run (``--sequential``: one after
the other, each account's sends before the next account's steps); then the exchange
side runs (paper matching, fill polls), then the idle-time garbage collection the
engine's ``QuietCollector`` does between candles (``--default-gc``: CPython's own
schedule). ``--cpu`` measures the lag in the process's CPU time instead of wall time:
the run does no I/O, so on an idle machine the two agree, and on a shared one the CPU
figure is the engine's own cost, not stretched by other processes. ``--journal``: the
memory journal (default), or the engine's database journal (``StoreJournal``) on a
fresh SQLite file or a fresh database on a PostgreSQL server, as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from sealbot.domain import Candle, CandleClosed, MarketRules, Pair
from sealbot.engine.budget import Budgets
from sealbot.engine.candles import FeedHub
from sealbot.engine.guard import GuardLimits, GuardPolicy, MarketSnapshot
from sealbot.engine.heap import QuietCollector
from sealbot.engine.journal import AccountRecord, BotRecord, Journal, MemoryJournal
from sealbot.engine.runner import AccountRunner, RunnerSettings
from sealbot.engine.store_journal import StoreJournal
from sealbot.store import UnitOfWork
from sealbot.store.db import make_session_factory
from sealbot.store.migrate import upgrade
from sealbot.store.models import DealRow, OrderRow
from sealbot.venues.paper import PaperVenue

DATA = Path(__file__).resolve().parent.parent / "src/sealbot/data/BTC-PERP-1m-20211231-20220107.csv.gz"
BTC = Pair("BTC", "USDT")
RULES = MarketRules(BTC, Decimal("0.01"), Decimal("0.00001"), min_notional=Decimal(5))


class ReplayClock:
    """Time is the replayed candle's; monotonic is real (for budgets, unused here)."""

    def __init__(self) -> None:
        self.at = datetime(2022, 1, 1, tzinfo=UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return self.at

    def wall(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load_candles(n: int) -> list[Candle]:
    df = pd.read_csv(DATA).head(n)
    return [Candle(BTC, "1m", datetime.fromisoformat(str(r.timestamp)).replace(tzinfo=UTC), Decimal(repr(r.open)),
                   Decimal(repr(r.high)), Decimal(repr(r.low)), Decimal(repr(r.close)), Decimal(repr(r.volume)))
            for r in df.itertuples()]


def dca(bot_id: str, k: int) -> dict[str, Any]:
    return {"bot_id": bot_id, "markets": [{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001",
                                           "min_notional": "5"}],
            "base_order_volume": "20", "safety_order_volume": "20", "max_safety_orders": 3,
            "safety_order_step_percentage": str(Decimal("0.5") + Decimal(k % 5) / 10),
            "take_profit": str(Decimal("1.0") + Decimal(k % 10) / 10), "cooldown": 60 * (k % 7)}


def seed_journal(url: str | None, n_accounts: int, per_account: int) -> tuple[Journal, list[AccountRecord]]:
    """The accounts (one user each) and their running DCA bots, in the memory journal
    (``url`` None) or in a fresh sealbot database at ``url`` (migrated here), read
    through the engine's ``StoreJournal`` as the engine reads them."""
    if url is None:
        memory = MemoryJournal()
        accounts = []
        for a in range(n_accounts):
            account = AccountRecord(str(a), f"user{a}", "binance")
            memory.add_account(account)
            with memory.transaction() as tx:
                for k in range(per_account):
                    bot_id = f"{a}x{k}"
                    tx.save_bot(BotRecord(bot_id, account.user, account.id, "dca", dca(bot_id, k), None))
            accounts.append(account)
        return memory, accounts
    upgrade(url)
    factory = make_session_factory(url)
    with UnitOfWork(factory) as uow:
        for a in range(n_accounts):
            user = uow.users.add(f"bench{a}@example.org", "x")
            row = uow.accounts.add(user.id, "binance", f"bench {a}", is_paper=True)
            for k in range(per_account):
                bot = uow.bots.add(user.id, "dca", f"dca {a}x{k}", dca("0", k), account_id=row.id)
                uow.bots.set_status(user.id, bot.id, "running")
    store = StoreJournal(factory)
    return store, store.accounts()


@contextlib.contextmanager
def database_url(choice: str) -> Iterator[str | None]:
    """``--journal``: memory (None), sqlite (a fresh file), or a fresh database created
    on the PostgreSQL server of the URL given, dropped afterwards."""
    if choice == "memory":
        yield None
        return
    if choice == "sqlite":
        with tempfile.TemporaryDirectory() as scratch:
            yield f"sqlite:///{Path(scratch) / 'bench.db'}"
        return
    server = sa.make_url(choice)
    name = f"sealbot_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


async def run(n_bots: int, candles: list[Candle], per_account: int, sequential: bool = False,
              quiet_gc: bool = True, cpu: bool = False, journal_url: str | None = None) -> dict[str, float]:
    before = rss_mb()
    # cpu: lag in this process's CPU time (time.process_time), which other work on a shared
    # machine does not stretch: the run does no I/O, so on an idle machine it is the wall lag
    lag_clock = time.process_time if cpu else time.perf_counter
    clock = ReplayClock()
    hub = FeedHub("1m")
    guard = GuardPolicy(GuardLimits(max_deviation_pct=Decimal(5), max_order_notional=Decimal(1000),
                                    max_daily_notional=None, min_quote_volume_24h=Decimal(0)))
    settings = RunnerSettings(poll_feeds=False, background=False, market_ttl=1e12)
    lags: list[float] = []
    steady: list[float] = []  # lags of every candle but the first (where every bot opens its first deal)
    published = [0.0]
    first = [True]

    def lag(_bot: str, event: object, _n: int) -> None:
        if isinstance(event, CandleClosed):
            waited = lag_clock() - published[0]
            lags.append(waited)
            if not first[0]:
                steady.append(waited)

    accounts: list[tuple[AccountRunner, PaperVenue]] = []
    n_accounts = max(1, n_bots // per_account)
    journal, records = seed_journal(journal_url, n_accounts, per_account)
    for account in records:
        venue = PaperVenue({BTC: RULES}, {"USDT": Decimal(10**9)}, clock=clock.now)
        venue.on_price(BTC, candles[0].open, candles[0].open_time)
        runner = AccountRunner(account, venue, journal, guard=guard, hub=hub, clock=clock, settings=settings)
        runner.on_commands = lag
        runner.market.set(MarketSnapshot(BTC, last=candles[0].open, quote_volume_24h=Decimal(10**12)))
        await runner.start()
        accounts.append((runner, venue))
    # the engine's QuietCollector (RunnerSettings.quiet_gc): settled once the accounts are
    # loaded, full collections only when every account is idle (here: after each candle)
    collector = QuietCollector() if quiet_gc else None
    if collector is not None:
        collector.install()
    loaded = rss_mb()
    offered = woken = 0

    start = time.perf_counter()
    steps_before = sum(r.steps for r, _ in accounts)
    for i, candle in enumerate(candles):
        first[0] = i == 0
        clock.at = candle.close_time
        published[0] = lag_clock()
        offered += hub.subscriber_count("binance", BTC)  # each bot's trigger is looked at...
        woken += hub.publish("binance", candle)  # ...and only the bots the candle reaches get it
        # the candle reaches every bot first (the lag measured: candle -> command), then
        # the exchange side: the paper venues match and each account polls its fills (as
        # the poller task does on its own interval; their commands are not candle lag)
        for runner, _venue in accounts:
            runner.market.set(MarketSnapshot(BTC, last=candle.close, quote_volume_24h=Decimal(10**12)))
        if sequential:
            for runner, _venue in accounts:
                await runner.drain()
        else:  # as the engine's account workers do: each account runs concurrently with the others
            await asyncio.gather(*(runner.drain() for runner, _venue in accounts if not runner.queue.empty()))
        for runner, venue in accounts:
            if venue.on_price(BTC, candle.close, candle.close_time) or runner.poll_due:
                await runner.poll_once()
                await runner.drain()
        if collector is not None:
            collector.idle()
    elapsed = time.perf_counter() - start
    if collector is not None:
        collector.uninstall()
    after = rss_mb()
    orders, deals = counts(journal)
    lags.sort()
    steady.sort()
    return {
        "bots": n_bots, "candles": len(candles), "events": offered, "woken": woken, "seconds": elapsed,
        "events_per_s": offered / elapsed, "steps": sum(r.steps for r, _ in accounts) - steps_before,
        "p50_ms": 1000 * statistics.median(lags) if lags else 0.0,
        "p99_ms": 1000 * lags[int(0.99 * (len(lags) - 1))] if lags else 0.0,
        "steady_p50_ms": 1000 * statistics.median(steady) if steady else 0.0,
        "steady_p99_ms": 1000 * steady[int(0.99 * (len(steady) - 1))] if steady else 0.0,
        "commands_on_candles": len(lags), "commands_on_first": len(lags) - len(steady),
        "mem_per_bot_kb": 1024 * (after - before) / n_bots, "load_mem_per_bot_kb": 1024 * (loaded - before) / n_bots,
        "orders": orders, "closed_deals": deals,
    }


def counts(journal: Journal) -> tuple[int, int]:
    """Orders journalled and deals closed."""
    if isinstance(journal, MemoryJournal):
        return (len(journal.data.orders),
                sum(1 for d in journal.data.deals.values() if d.status.value == "closed"))
    assert isinstance(journal, StoreJournal)
    with UnitOfWork(journal.session_factory) as uow:
        orders = uow.session.scalar(sa.select(sa.func.count()).select_from(OrderRow)) or 0
        deals = uow.session.scalar(sa.select(sa.func.count()).select_from(DealRow).where(DealRow.status == "closed"))
    return orders, deals or 0


# How ccxt's throttle and the limits on both sides are set for a signal-to-order run.
SIGNAL_MODES: dict[str, str] = {
    "window": "ccxt throttle on (rolling window), limits lifted on all sides (simex, budgets, ccxt: 10^7 weight/min)",
    "published": "ccxt throttle on (rolling window), Binance's published limits on all sides, a burst that fits them",
    "ccxt-default": "ccxt throttle on as ccxt ships it (bucket of capacity 1), limits lifted",
    "off": "ccxt throttle off, limits lifted (the engine's budgets pace requests)",
}
LIFTED_WEIGHT = 10**7
# Binance's order limit is 50 per 10 s per account (45 with the engine's margin): a burst
# of this many signals fits it and the minute's request weight.
PUBLISHED_BURST = 40


async def signal_latency(n: int, mode: str = "window") -> dict[str, float]:
    """Signal -> order acknowledged by simex on loopback, through the whole engine path:
    balances fetched, signal bot step, guard, journal transaction (SQLite), budgets, signed
    ccxt request through ccxt's throttle. ``mode`` is one of ``SIGNAL_MODES``."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "engine"))
    from simex_env import SimexTime, seed, simex_venue

    from sealbot.domain import SignalAction, SignalReceived
    from sealbot.engine.runner import InProcessRunner
    from sealbot.simex import SimexServer
    from sealbot.venues.throttle import set_weight_per_window

    if mode not in SIGNAL_MODES:
        raise ValueError(f"unknown mode {mode!r} (one of {', '.join(SIGNAL_MODES)})")
    published = mode == "published"
    url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    market = {"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}
    with SimexServer(speed=0, weight_limit=6000 if published else LIFTED_WEIGHT) as sx:
        account = sx.admin.create_account("bench", {"USDT": "1000000"})
        key = sx.admin.create_key(account["id"])
        journal, account_id, _ = seed(url, [])
        from sealbot.store import UnitOfWork

        with UnitOfWork(journal.session_factory) as uow:
            owner = uow.accounts.all_with_status("active")[0].owner_id
            bot = uow.bots.add(owner, "signal", "sig", {"bot_id": "1", "markets": [market], "amount": "20"},
                               account_id=int(account_id))
            uow.bots.set_status(owner, bot.id, "running")
            bot_id = str(bot.id)
        acks: list[float] = []
        throttled: list[float] = []

        async def factory(_a: AccountRecord) -> Any:
            venue = simex_venue(sx.base_url, key["key"], key["secret"])
            exchange = venue.exchange
            if mode == "window":
                set_weight_per_window(exchange, LIFTED_WEIGHT)  # the simex of this run allows that much
            elif mode == "ccxt-default":  # what CcxtVenue built before: capacity 1, one unit per 50 ms
                exchange.rateLimiterAlgorithm, exchange.tokenBucket = "leakyBucket", None
                exchange.init_rest_rate_limiter()
            elif mode == "off":
                exchange.enableRateLimit = False
            throttle = exchange.throttle

            async def timed_throttle(cost: Any = None) -> Any:
                t0 = time.perf_counter()
                try:
                    return await throttle(cost)
                finally:
                    throttled.append(time.perf_counter() - t0)

            exchange.throttle = timed_throttle
            original = venue.create_order

            async def timed(order: Any, attempt_at: Any = None) -> Any:
                answer = await original(order, attempt_at)
                acks.append(time.perf_counter())
                return answer

            venue.create_order = timed  # type: ignore[method-assign]
            return venue

        clock = SimexTime(sx.admin.clock()["now_ms"])
        # the engine's per-IP and per-account budgets: Binance's, or lifted like the exchange's
        budgets = Budgets() if published else Budgets(weight_per_minute=LIFTED_WEIGHT, orders_per_10s=10**6)
        runner = InProcessRunner(journal, factory, clock=clock, budgets=budgets,
                                 guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))),
                                 settings=RunnerSettings(background=False, poll_feeds=False))
        await runner.start_account(account_id)
        acc = runner.accounts[account_id]
        assert bot_id in acc.bots, (bot_id, list(acc.bots))
        throttled.clear()  # market loading and reconciliation at start are not signals
        lags: list[float] = []
        t_start = time.perf_counter()
        for i in range(n):
            action = SignalAction.ENTER_LONG if i % 2 == 0 else SignalAction.EXIT_LONG
            before = len(acks)
            t0 = time.perf_counter()
            price = acc.market.snapshot(BTC).reference_price
            await acc.deliver(bot_id, SignalReceived(f"s{i}", action, clock.now(), BTC, trigger_price=price))
            if len(acks) > before:
                lags.append(acks[before] - t0)
            await acc.poll_once()
            await acc.drain()
        wall = time.perf_counter() - t_start
        await runner.stop()
    lags.sort()
    return {"signals": n, "orders": len(lags), "p50_ms": 1000 * statistics.median(lags),
            "p99_ms": 1000 * lags[int(0.99 * (len(lags) - 1))], "max_ms": 1000 * lags[-1],
            "throttle_max_ms": 1000 * max(throttled, default=0.0), "requests": len(throttled), "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--candles", type=int, default=1500)
    parser.add_argument("--per-account", type=int, default=100)
    parser.add_argument("--sequential", action="store_true",
                        help="drain the accounts one after another (each account's sends before the next account's "
                             "steps) instead of concurrently, as the engine's account workers run")
    parser.add_argument("--default-gc", action="store_true",
                        help="CPython's own collection schedule instead of the engine's QuietCollector")
    parser.add_argument("--cpu", action="store_true",
                        help="measure candle-to-command lag in this process's CPU time rather than wall time "
                             "(figures a shared machine's other work does not stretch)")
    parser.add_argument("--journal", default="memory",
                        help="where the engine journals: memory (default), sqlite (a fresh file), or a PostgreSQL URL "
                             "(e.g. postgresql://postgres@127.0.0.1:5432/test): a fresh database is created on that "
                             "server for each run, migrated, and dropped after")
    parser.add_argument("--signals", type=int, default=200, help="signal-to-order samples on simex (0: skip)")
    parser.add_argument("--signal-modes", nargs="+", choices=list(SIGNAL_MODES), default=list(SIGNAL_MODES),
                        help="throttle and limits of the signal runs (see SIGNAL_MODES)")
    args = parser.parse_args()
    logging.getLogger("sealbot.engine.market").setLevel(logging.ERROR)  # the paper venue has no 24h candles
    candles = load_candles(args.candles)
    print(f"{'bots':>6} {'candles':>7} {'events/s':>10} {'steps':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'st.p50':>8} {'st.p99':>8} {'KB/bot':>7} {'orders':>7} {'deals':>6} {'wall s':>7}")
    for n in args.bots:
        with database_url(args.journal) as url:
            r = asyncio.run(run(n, candles, min(args.per_account, n), args.sequential, not args.default_gc, args.cpu,
                                url))
        print(f"{n:>6} {len(candles):>7} {r['events_per_s']:>10.0f} {r['steps']:>8.0f} {r['p50_ms']:>8.2f} "
              f"{r['p99_ms']:>8.2f} {r['steady_p50_ms']:>8.2f} {r['steady_p99_ms']:>8.2f} {r['mem_per_bot_kb']:>7.1f} "
              f"{r['orders']:>7.0f} {r['closed_deals']:>6.0f} {r['seconds']:>7.1f}")
    if args.signals:
        print("signal -> order acknowledged by simex (loopback):")
        for mode in args.signal_modes:
            n = min(args.signals, PUBLISHED_BURST) if mode == "published" else args.signals
            r = asyncio.run(signal_latency(n, mode))
            print(f"  {mode:>12}: {r['orders']:.0f} orders, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
                  f"max {r['max_ms']:.2f} ms; {r['requests']:.0f} requests, longest throttle wait "
                  f"{r['throttle_max_ms']:.2f} ms; {r['wall_s']:.1f} s  ({SIGNAL_MODES[mode]})")


if __name__ == "__main__":
    main()
