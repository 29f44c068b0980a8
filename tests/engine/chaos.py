"""What both chaos tests share (the in-process one in test_engine_crash.py and the
scaled-out one in tests/scaleout/test_scaleout_chaos.py): the bots, the faults, the
fork server of engine processes, and the end checks of the books against simex.

The end checks are the engine issue's: no duplicate order on simex, nothing on simex that
sealbot did not journal first, every simex trade in sealbot's fills (and no other), every
order's filled amount and finality as simex says, every deal as simex's trades make it,
and each account's balances equal to its start plus its stored fills, to the unit.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sealbot.bots.common.position import apply_fill
from sealbot.domain import ClientOrderId, Deal, Direction, Fill, OrderStatus, Pair, Side
from sealbot.engine.budget import Budgets
from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.journal import AccountRecord, JournalOrder
from sealbot.engine.runner import InProcessRunner, RunnerSettings
from sealbot.engine.store_journal import StoreJournal
from sealbot.simex import SimexServer
from sealbot.store import UnitOfWork, make_session_factory, upgrade
from sealbot.store.models import Bot, DealRow, FillRow, OrderRow
from sealbot.venues.base import Venue

from .simex_env import SimexTime, dca, simex_venue

SEED = int(os.environ.get("SEALBOT_CRASH_SEED", "20261124"))
KILLS = int(os.environ.get("SEALBOT_CRASH_KILLS", "20"))
DEALS = int(os.environ.get("SEALBOT_CRASH_DEALS", "200"))
BOTS_PER_ACCOUNT = 8
START_USDT = Decimal(100000)
BTC = Pair("BTC", "USDT")
LIFTED_WEIGHT_LIMIT = 10**7  # the chaos tests' simex: SimexServer(weight_limit=LIFTED_WEIGHT_LIMIT)
FINAL = {"FILLED", "CANCELED", "EXPIRED", "REJECTED", "EXPIRED_IN_MATCH"}


class Zygote:
    """The fork server of an engine script (crash_worker.py, scaleout_worker.py): each
    ``spawn`` is a fresh engine process, forked after the imports."""

    def __init__(self, script: Path, log: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.log = log
        with log.open("w") as err:
            self.proc = subprocess.Popen([sys.executable, str(script), "--zygote"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        self._buffer = b""
        self.ready: set[int] = set()  # engines whose "ready" line was read while waiting for another
        assert self._line(120.0) == "zygote ready"

    def _line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()  # read unbuffered: select() cannot see a wrapper's buffer
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(fd, 4096) if ready else b""
            if not chunk:
                if ready or self.proc.poll() is not None:
                    raise AssertionError(f"the engine's fork server died: {self.tail()}")
                break
            self._buffer += chunk
        if b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            return line.decode().strip()
        raise AssertionError(f"no answer from the engine: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text()[-3000:]

    def spawn(self, args: dict[str, Any]) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(args) + "\n")
        self.proc.stdin.flush()
        answer = self._line(30.0)
        while answer.startswith("ready "):  # from an engine started (or killed) before we read its line
            self.ready.add(int(answer.split()[1]))
            answer = self._line(30.0)
        assert answer.startswith("forked "), answer
        return int(answer.split()[1])

    def wait_ready(self, pid: int, timeout: float = 30.0) -> bool:
        """Until the engine printed ``ready`` (True) or ``timeout`` passed (False)."""
        assert self.proc.stdout is not None
        if pid in self.ready:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._line(deadline - time.monotonic())
            except AssertionError:
                if not Path(f"/proc/{pid}").exists():
                    raise AssertionError(f"engine {pid} died before it was ready: {self.tail()}") from None
                return False
            if line.startswith("ready "):
                self.ready.add(int(line.split()[1]))
            if pid in self.ready:
                return True
        return False

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


def kill(pid: int) -> None:
    """SIGKILL one engine process and wait until it is gone (the zygote reaps it)."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not Path(f"/proc/{pid}").exists(), f"engine {pid} survived SIGKILL"


def bot_config(rng: random.Random) -> dict[str, Any]:
    safety = rng.choice([0, 1, 2])
    return dca(take_profit=rng.choice(["0.1", "0.15", "0.2"]),
               safety_order_step_percentage=rng.choice(["0.1", "0.2", "0.3"]), max_safety_orders=safety,
               active_safety_orders_count=min(1, safety), max_active_deals=1,
               base_order_volume=rng.choice(["20", "35", "50"]), safety_order_volume="40")


def seed_db(url: str, rng: random.Random, n_accounts: int) -> tuple[StoreJournal, list[str]]:
    upgrade(url)
    factory = make_session_factory(url)
    account_ids = []
    with UnitOfWork(factory) as uow:
        user = uow.users.add("alice@example.org", "x")
        for a in range(n_accounts):
            account = uow.accounts.add(user.id, "binance", f"simex {a}")
            for i in range(BOTS_PER_ACCOUNT):
                bot = uow.bots.add(user.id, "dca", f"dca {a}.{i}", bot_config(rng), account_id=account.id)
                uow.bots.set_status(user.id, bot.id, "running")
            account_ids.append(str(account.id))
    return StoreJournal(factory), account_ids


def inject_random_faults(simex: SimexServer, rng: random.Random, keys: list[str]) -> list[str]:
    """One to three faults of random kind, target and count: what a flaky exchange does."""
    made = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["timeout", "late", "error_5xx", "rate_limit", "partial_fill", "partial_fill"])
        key = rng.choice([None, *keys])
        times = rng.randint(1, 3)
        if kind == "partial_fill":
            value: Any = rng.choice(["0.3", "0.5", "0.7"])
            path = None
        else:
            path = rng.choice(["/api/v3/order", "/api/v3/order", "/api/v3/myTrades", "/api/v3/openOrders", None])
            value = {"timeout": rng.choice([0.5, 2.0]), "error_5xx": rng.choice([500, 502, 503]),
                     "rate_limit": None, "late": rng.choice([1.7, 2.5])}[kind]
        if kind == "late":  # the client (1.5 s) gives up, then the exchange carries the request out
            simex.admin.add_fault("latency", key=key, path_prefix=path, value=value, times=times)
        else:
            simex.admin.add_fault(kind, key=key, path_prefix=path, value=value, times=times)
        made.append(f"{kind}({path or '*'}, x{times})")
    return made


def closed_on_simex(orders: list[dict[str, Any]]) -> set[tuple[str, int]]:
    """Deals whose exit order filled in full, by simex's own order list."""
    out = set()
    for order in orders:
        if order["side"] == "SELL" and order["status"] == "FILLED":
            cid = ClientOrderId.parse(str(order["client_id"]))
            out.add((cid.bot, cid.deal))
    return out


def simex_deals(orders: list[dict[str, Any]]) -> dict[tuple[str, int], Deal]:
    """Each deal rebuilt from simex's own order list and trades, with the bots' accounting."""
    deals: dict[tuple[str, int], Deal] = {}
    for order in sorted(orders, key=lambda o: int(o["id"])):
        cid = ClientOrderId.parse(str(order["client_id"]))
        key = (cid.bot, cid.deal)
        deal = deals.get(key) or Deal(cid.bot, cid.deal, BTC, Direction.LONG, datetime.now(UTC))
        for t in order["trades"]:
            deal = apply_fill(deal, Fill(cid, BTC, Side(str(order["side"]).lower()), Decimal(t["price"]),
                                         Decimal(t["qty"]), Decimal(t["commission"]), t["commission_asset"],
                                         datetime.now(UTC), str(t["id"])))
        deals[key] = deal
    return deals


@dataclass(frozen=True)
class Books:
    """What the end checks counted."""

    orders: int
    fills: int
    partial: int  # orders filled in more than one trade, or cut short after a partial fill
    deals: int
    closed: int


async def heal_and_reconcile(simex: SimexServer, journal: StoreJournal, account_ids: list[str],
                             keys: list[dict[str, Any]]) -> None:
    """Heal and freeze the exchange; one last in-process engine reconciles every account,
    as any restart would, so that what the killed engines left in flight is settled."""
    simex.admin.clear_faults()
    now_ms = simex.admin.set_clock(speed=0)["now_ms"]
    by_account = {aid: k for aid, k in zip(account_ids, keys, strict=True)}

    async def factory(a: AccountRecord) -> Venue:
        return simex_venue(simex.base_url, by_account[a.id]["key"], by_account[a.id]["secret"])

    clock = SimexTime(now_ms)
    # simex's request-weight limit is lifted (SimexServer(weight_limit=...)): so are this
    # engine's budgets, which adopt the weight simex reports used; the frozen clock would
    # never open a new window for a budget that took the chaos run's count as its own
    budgets = Budgets(clock, weight_per_minute=LIFTED_WEIGHT_LIMIT, orders_per_10s=LIFTED_WEIGHT_LIMIT)
    runner = InProcessRunner(journal, factory, guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))),
                             clock=clock, budgets=budgets, settings=RunnerSettings(background=False, poll_feeds=False))
    # An order the last killed engine sent may still be carried out until its attempt's
    # receive window has passed, in real time (the exact resolve rule, engine.orders): such
    # an order is neither found nor re-sent before; keep reconciling until none is pending.
    deadline = time.monotonic() + 30.0
    for aid in account_ids:
        await runner.start_account(aid)
        acc = runner.accounts[aid]
        # until settled (nothing pending, no reconcile due) and quiet: two polls in a row that
        # change nothing in the books (an exit placed while healing has its fill polled too)
        quiet = 0
        while quiet < 2 and time.monotonic() < deadline:
            before = _books(journal, aid)
            await acc.poll_once()
            await acc.drain()
            settled = not acc.needs_reconcile and not _pending(journal, aid)
            quiet = quiet + 1 if settled and _books(journal, aid) == before else 0
            if quiet < 2:
                await asyncio.sleep(0.2)
        left = _pending(journal, aid)
        assert not left, (f"account {aid}: still pending after healing ({deadline - time.monotonic():.1f} s left, "
                          f"reconciling: {acc.needs_reconcile}): "
                          + "; ".join(f"{e.order.client_id} ({e.reason}) created {e.created_at} attempted "
                                      f"{e.attempted_at}" for e in left))
    await runner.stop()


def _books(journal: StoreJournal, account_id: str) -> tuple[int, int]:
    """(fills, orders still open) of the account: what a poll that changed something moves."""
    with journal.session_factory() as s:
        fills = s.scalar(sa.select(sa.func.count(FillRow.id)).join(OrderRow, FillRow.order_id == OrderRow.id)
                         .where(OrderRow.account_id == int(account_id)))
        opened = s.scalar(sa.select(sa.func.count(OrderRow.id)).where(
            OrderRow.account_id == int(account_id), OrderRow.status.in_(["pending", "open", "partially_filled"])))
    return int(fills or 0), int(opened or 0)


def _pending(journal: StoreJournal, account_id: str) -> list[JournalOrder]:
    with journal.transaction() as tx:
        return [e for e in tx.open_orders(account_id) if e.order.status is OrderStatus.PENDING]


def check_books(simex: SimexServer, journal: StoreJournal, account_ids: list[str],
                sim_accounts: list[dict[str, Any]], seed: int) -> Books:
    """The engine issue's end checks (each assert names the seed that replays a failure)."""
    with journal.session_factory() as s:
        journalled = {r.client_order_id: r for r in s.scalars(sa.select(OrderRow))}
        fills = {r.trade_id: r for r in s.scalars(sa.select(FillRow))}
        db_deals = {(str(r.bot_id), r.no): r for r in s.scalars(sa.select(DealRow))}
        fill_sides = list(s.execute(sa.select(FillRow, OrderRow.side, OrderRow.account_id)
                                    .join(OrderRow, FillRow.order_id == OrderRow.id)))
    all_orders: list[dict[str, Any]] = []
    for aid, acc_ in zip(account_ids, sim_accounts, strict=True):
        on_simex = simex.admin.orders(acc_["id"])
        all_orders += on_simex
        client_ids = [str(o["client_id"]) for o in on_simex]
        # 1. no duplicates: every client order id reached simex at most once
        assert len(client_ids) == len(set(client_ids)), f"seed {seed}: an order was placed twice"
        # 2. nothing on simex that sealbot did not journal first, under this very account
        for o in on_simex:
            row = journalled.get(str(o["client_id"]))
            assert row is not None, f"seed {seed}: simex holds {o['client_id']}, never journalled"
            assert str(row.account_id) == aid
    # 3. every trade simex made is in sealbot's books, and no fill there that simex did not make
    # (before the balances: a missing trade is named here, a balance only says it is off)
    simex_trades = {str(t["id"]): (t, o) for o in all_orders for t in o["trades"]}
    missing = [f"{t['id']} of {o['client_id']} at {_ms(t['time_ms'])} (simex {o['status']} placed {_ms(o['time_ms'])}; "
               f"books {journalled[str(o['client_id'])].status}, created {journalled[str(o['client_id'])].created_at})"
               for t, o in simex_trades.values() if str(t["id"]) not in fills]
    assert not missing and set(simex_trades) == set(fills), (
        f"seed {seed}: missing {missing[:10]}, unknown {sorted(set(fills) - set(simex_trades))[:10]}")
    for order in all_orders:
        order_row = journalled[str(order["client_id"])]
        assert order_row.filled == Decimal(str(order["executed_qty"])), (seed, order["client_id"])
        assert (order_row.status in ("filled", "canceled", "expired", "rejected")) == (order["status"] in FINAL), (
            seed, order["client_id"], order_row.status, order["status"])
    # 5. balances: initial + every stored fill equals simex's balance to the unit
    for aid, acc_ in zip(account_ids, sim_accounts, strict=True):
        usdt, btc = START_USDT, Decimal(0)
        for fill, side, account_id in fill_sides:
            if str(account_id) != aid:
                continue
            fee_btc = fill.fee if fill.fee_currency == "BTC" else Decimal(0)
            fee_usdt = fill.fee if fill.fee_currency == "USDT" else Decimal(0)
            sign = 1 if side == "buy" else -1
            btc += sign * fill.amount - fee_btc
            usdt -= sign * fill.amount * fill.price + fee_usdt
        balances = simex.admin.account(acc_["id"])["balances"]
        total = {a: Decimal(b["free"]) + Decimal(b["locked"]) for a, b in balances.items()}
        assert total.get("BTC", Decimal(0)) == btc, f"seed {seed}: account {aid} BTC {total.get('BTC')} != books {btc}"
        assert total["USDT"] == usdt, f"seed {seed}: account {aid} USDT {total['USDT']} != books {usdt}"
    # 4. every deal as simex's trades make it, and closed exactly when its exit filled on simex
    expected = simex_deals(all_orders)
    exits = closed_on_simex(all_orders)
    for key_, deal in expected.items():
        deal_row = db_deals[key_]
        got = (deal_row.bought, deal_row.sold, deal_row.spent, deal_row.received, deal_row.fees_quote)
        assert got == (deal.bought, deal.sold, deal.spent, deal.received, deal.fees_quote), (seed, key_)
        assert (deal_row.status == "closed") == (key_ in exits), (
            seed, key_, deal_row.status, _deal_story(key_, journalled, all_orders, journal))
    partial = sum(1 for o in all_orders if len(o["trades"]) > 1 or (
        o["status"] in ("EXPIRED", "CANCELED") and Decimal(str(o["executed_qty"])) > 0))
    return Books(len(all_orders), len(fills), partial, len(expected), len(exits))


def _ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _deal_story(key: tuple[str, int], journalled: dict[str, Any], orders: list[dict[str, Any]],
                journal: StoreJournal) -> str:
    """A deal's orders in the books and on simex, and its bot's stored state (a failure's story)."""
    lines = []
    for o in sorted(orders, key=lambda o: int(o["id"])):
        cid = ClientOrderId.parse(str(o["client_id"]))
        if (cid.bot, cid.deal) == key:
            row = journalled[str(o["client_id"])]
            lines.append(f"{o['client_id']}: simex {o['status']} {o['executed_qty']}, books {row.status} {row.filled} "
                         f"({row.last_error})")
    on_simex = {str(o["client_id"]) for o in orders}
    for cid_text, row in sorted(journalled.items()):
        if (str(row.bot_id), row.deal_no) == key and cid_text not in on_simex:
            lines.append(f"{cid_text}: not on simex, books {row.status} {row.filled} ({row.last_error}) created "
                         f"{row.created_at} attempted {row.attempted_at}")
    with journal.session_factory() as s:
        bot = s.get(Bot, int(key[0]))
        lines.append(f"bot {key[0]}: {bot.status if bot else None} {bot.pause_reason if bot else None} "
                     f"{json.dumps(bot.state if bot else None, default=str)[:1500]}")
    return "\n".join(lines)
