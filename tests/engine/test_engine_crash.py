"""Crash test: the engine process is SIGKILLed at random points mid-deal, restarted, and
the books still match the exchange: no duplicate order on simex, no fill missing from
the database, every deal equal to what simex's own trades say, balances to the unit."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from sealbot.bots.common.position import apply_fill
from sealbot.domain import ClientOrderId, Deal, Direction, Fill, Pair, Side
from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.journal import AccountRecord
from sealbot.engine.runner import InProcessRunner, RunnerSettings
from sealbot.simex import SimexServer
from sealbot.store.models import DealRow, FillRow, OrderRow
from sealbot.venues.base import Venue

from .simex_env import SimexTime, dca, seed, simex_venue

WORKER = Path(__file__).resolve().parent / "crash_worker.py"
KILLS = int(os.environ.get("SEALBOT_CRASH_KILLS", "5"))
SPEED = 120.0
BTC = Pair("BTC", "USDT")


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=SPEED) as sx:
        yield sx


def spawn(args: dict[str, str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(WORKER), json.dumps(args)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    return proc


def wait_ready(proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == "ready":
            return
        if proc.poll() is not None:
            raise AssertionError("the engine process died before it was ready")
    raise AssertionError("the engine process did not become ready")


def simex_deals(orders: list[dict[str, object]]) -> dict[tuple[str, int], Deal]:
    """Each deal rebuilt from simex's own order list and trades, with the bots' accounting."""
    deals: dict[tuple[str, int], Deal] = {}
    for order in sorted(orders, key=lambda o: int(o["id"])):  # type: ignore[call-overload]
        cid = ClientOrderId.parse(str(order["client_id"]))
        key = (cid.bot, cid.deal)
        deal = deals.get(key) or Deal(cid.bot, cid.deal, BTC, Direction.LONG, datetime.now(UTC))
        for t in order["trades"]:  # type: ignore[attr-defined]
            deal = apply_fill(deal, Fill(cid, BTC, Side(str(order["side"]).lower()), Decimal(t["price"]),
                                         Decimal(t["qty"]), Decimal(t["commission"]), t["commission_asset"],
                                         datetime.now(UTC), str(t["id"])))
        deals[key] = deal
    return deals


@pytest.mark.slow
async def test_sigkill_at_random_points_loses_and_duplicates_nothing(simex: SimexServer, sqlite_url: str) -> None:
    rng = random.Random(20261124)
    account = simex.admin.create_account("alice", {"USDT": "100000"})
    key = simex.admin.create_key(account["id"])
    configs = [dca(take_profit=str(tp), safety_order_step_percentage=str(step), max_active_deals=1)
               for tp, step in ((Decimal("0.15"), Decimal("0.2")), (Decimal("0.25"), Decimal("0.3")),
                                (Decimal("0.1"), Decimal("0.15")))]
    journal, account_id, _bots = seed(sqlite_url, configs)
    args = {"db_url": sqlite_url, "base_url": simex.base_url, "admin_token": simex.admin_token,
            "key": key["key"], "secret": key["secret"], "account_id": account_id}
    # exchange faults on the way: 5xx, 429, client timeouts on order placement, partial fills
    simex.admin.add_fault("error_5xx", path_prefix="/api/v3/order", times=3)
    simex.admin.add_fault("rate_limit", path_prefix="/api/v3/order", times=2)
    simex.admin.add_fault("timeout", path_prefix="/api/v3/order", value=2, times=2)
    simex.admin.add_fault("partial_fill", value="0.5", times=6)
    for _ in range(KILLS):
        proc = spawn(args)
        wait_ready(proc)
        time.sleep(rng.uniform(0.5, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    proc = spawn(args)
    wait_ready(proc)
    time.sleep(3.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    # Freeze the exchange and let one last engine reconcile, as a restart would.
    simex.admin.clear_faults()
    now_ms = simex.admin.set_clock(speed=0)["now_ms"]

    async def factory(_a: AccountRecord) -> Venue:
        return simex_venue(simex.base_url, key["key"], key["secret"])

    runner = InProcessRunner(journal, factory, guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))),
                             clock=SimexTime(now_ms), settings=RunnerSettings(background=False, poll_feeds=False))
    await runner.start_account(account_id)
    acc = runner.accounts[account_id]
    for _ in range(3):
        await acc.poll_once()
        await acc.drain()
    await runner.stop()

    on_simex = simex.admin.orders(account["id"])
    client_ids = [str(o["client_id"]) for o in on_simex]
    assert len(client_ids) == len(set(client_ids)), "an order was placed twice"
    simex_trades = {str(t["id"]) for o in on_simex for t in o["trades"]}  # type: ignore[attr-defined]
    with journal.session_factory() as s:
        journalled = {r.client_order_id: r for r in s.scalars(sa.select(OrderRow))}
        fills = {r.trade_id for r in s.scalars(sa.select(FillRow))}
        db_deals = {(str(r.bot_id), r.no): r for r in s.scalars(sa.select(DealRow))}
    assert set(client_ids) <= set(journalled), "simex holds an order sealbot never journalled"
    assert simex_trades == fills, f"fills missing from the books: {sorted(simex_trades - fills)}"
    for order in on_simex:
        assert journalled[str(order["client_id"])].filled == Decimal(str(order["executed_qty"]))
    expected = simex_deals(on_simex)
    closed = 0
    for key_, deal in expected.items():
        row = db_deals[key_]
        got = (row.bought, row.sold, row.spent, row.received, row.fees_quote)
        assert got == (deal.bought, deal.sold, deal.spent, deal.received, deal.fees_quote), key_
        closed += row.status == "closed"
    # balances: the books (initial + every stored fill) equal simex's balances to the unit
    balances = simex.admin.account(account["id"])["balances"]
    usdt, btc = Decimal(100000), Decimal(0)
    with journal.session_factory() as s:
        for fill, side in s.execute(sa.select(FillRow, OrderRow.side).join(OrderRow, FillRow.order_id == OrderRow.id)):
            fee_btc = fill.fee if fill.fee_currency == "BTC" else Decimal(0)
            fee_usdt = fill.fee if fill.fee_currency == "USDT" else Decimal(0)
            sign = 1 if side == "buy" else -1
            btc += sign * fill.amount - fee_btc
            usdt -= sign * fill.amount * fill.price + fee_usdt
    total = {a: Decimal(b["free"]) + Decimal(b["locked"]) for a, b in balances.items()}
    assert total.get("BTC", Decimal(0)) == btc
    assert abs(total["USDT"] - usdt) <= Decimal("0.00000001") * len(fills), (total["USDT"], usdt)
    print(f"\ncrash test: {KILLS + 1} kills, {len(on_simex)} orders, {len(fills)} fills, "
          f"{len(expected)} deals ({closed} closed)")
    assert len(expected) >= 3 and closed >= 1
