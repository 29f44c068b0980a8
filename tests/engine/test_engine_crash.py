"""Chaos test: hundreds of deals on simex under random exchange faults, the engine
process SIGKILLed at random points and restarted, and the books still match the
exchange: no duplicate order on simex, no fill missing from the database, every order
and deal equal to what simex's own orders and trades say, balances to the unit.

Knobs (environment): ``SEALBOT_CRASH_SEED`` (the random seed, printed in the output so a
failure can be replayed), ``SEALBOT_CRASH_KILLS`` (minimum SIGKILLs, default 20),
``SEALBOT_CRASH_DEALS`` (minimum deals closed on simex, default 200). The same workload
and end checks run on the scaled-out backend in tests/scaleout/test_scaleout_chaos.py
(the shared parts are in chaos.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sealbot.simex import SimexServer

from .chaos import (
    DEALS,
    KILLS,
    LIFTED_WEIGHT_LIMIT,
    SEED,
    START_USDT,
    Zygote,
    check_books,
    closed_on_simex,
    heal_and_reconcile,
    inject_random_faults,
    kill,
    seed_db,
)

WORKER = Path(__file__).resolve().parent / "crash_worker.py"
ACCOUNTS = 4
SPEED = 600.0  # simulated seconds per real second: a 1m candle every 0.1 s
TIME_LIMIT = 240.0  # real seconds to reach the minimum kills and deals before the test fails


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    # the exchange's request-weight limit is lifted: 24 bots make many deals a second
    with SimexServer(speed=SPEED, weight_limit=LIFTED_WEIGHT_LIMIT) as sx:
        yield sx


@pytest.mark.slow
async def test_sigkill_at_random_points_under_random_faults_loses_and_duplicates_nothing(
        simex: SimexServer, sqlite_url: str, tmp_path: Path) -> None:
    print(f"\ncrash test: seed {SEED} (SEALBOT_CRASH_SEED={SEED} replays it), >= {KILLS} kills, >= {DEALS} deals")
    rng = random.Random(SEED)
    sim_accounts, keys = [], []
    for a in range(ACCOUNTS):
        account = simex.admin.create_account(f"alice{a}", {"USDT": str(START_USDT)})
        sim_accounts.append(account)
        keys.append(simex.admin.create_key(account["id"]))
    journal, account_ids = seed_db(sqlite_url, rng, ACCOUNTS)
    args = {"db_url": sqlite_url, "base_url": simex.base_url, "admin_token": simex.admin_token,
            "accounts": [{"account_id": aid, "key": k["key"], "secret": k["secret"]}
                         for aid, k in zip(account_ids, keys, strict=True)]}
    zygote = Zygote(WORKER, tmp_path / "engine.log")
    kills, faults_made, started = 0, 0, time.monotonic()
    all_orders: list[dict[str, Any]] = []
    try:
        while True:
            all_orders = [o for acc in sim_accounts for o in simex.admin.orders(acc["id"])]
            closed = len(closed_on_simex(all_orders))
            if kills >= KILLS and closed >= DEALS:
                break
            assert time.monotonic() - started < TIME_LIMIT, (
                f"seed {SEED}: only {kills} kills and {closed} closed deals in {TIME_LIMIT:.0f} s")
            pid = zygote.spawn(args)
            if rng.random() < 0.2:  # killed while starting: loading, reconciling, first sends
                time.sleep(rng.uniform(0.0, 0.6))
            else:
                assert zygote.wait_ready(pid), f"seed {SEED}: engine {pid} never became ready"
                made = inject_random_faults(simex, rng, [k["key"] for k in keys])
                faults_made += len(made)
                time.sleep(rng.uniform(0.3, 3.0))
            kill(pid)
            kills += 1
    finally:
        zygote.close()

    # Heal and freeze the exchange; one last engine reconciles, as any restart would.
    await heal_and_reconcile(simex, journal, account_ids, keys)
    books = check_books(simex, journal, account_ids, sim_accounts, SEED)
    elapsed = time.monotonic() - started
    print(f"crash test (seed {SEED}): {kills} SIGKILLs, {faults_made} faults injected, {books.orders} orders, "
          f"{books.fills} fills ({books.partial} orders filled in parts), {books.deals} deals, {books.closed} closed, "
          f"{elapsed:.0f} s")
    assert kills >= KILLS and books.closed >= DEALS
