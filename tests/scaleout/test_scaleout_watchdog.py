"""The watchdog in the scaled-out deployment: the worker that owns an account's partition
watches it, and nobody else does. An order placed on the exchange with the account's key
by someone other than sealbot (the leak's signature) is flagged within one polling
interval, the account's bots pause and a critical alert is recorded and delivered to the
user's channel; a worker that takes the partition over continues from the baseline the
previous owner stored."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.attacker import thief_order
from engine.receivers import WebhookReceiver
from sealbot.engine.notify import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_webhook
from sealbot.engine.scaleout.broker import Topology
from sealbot.engine.scaleout.partitions import PartitionStore
from sealbot.services import notifications
from sealbot.services.bots import create_bot
from sealbot.services.platform import Platform
from sealbot.simex import SimexServer
from sealbot.store.models import AlertRow, Bot, ExchangeAccount

from .platform_env import (
    DCA,
    engine_options,
    linked_account,
    make_platform,
    running_worker,
    until,
    upkeep_of,
    wall_clock_simex,
)

INTERVAL = 2.0  # seconds between two watchdog checks of one account
SYNC = 0.2  # the upkeep's pass: how often it looks which checks are due


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with wall_clock_simex() as server:
        yield server


def _alerts(platform: Platform, code: str) -> list[AlertRow]:
    with platform.uow() as uow:
        return list(uow.session.scalars(sa.select(AlertRow).where(AlertRow.code == code)))


def _statuses(platform: Platform) -> set[str]:
    with platform.uow() as uow:
        return {str(s) for s in uow.session.scalars(sa.select(Bot.status))}


async def test_an_order_placed_with_a_leaked_key_is_flagged_by_the_owning_worker_within_one_interval(
        pg_url: str, topology: Topology, tmp_path: Path, simex: SimexServer) -> None:
    platform = make_platform(tmp_path, pg_url, simex)
    acc = await linked_account(platform, simex, "leak")
    bot = create_bot(platform, acc.user, acc.account, "dca", "resting base order",
                     {**DCA, "base_order_type": "limit"}, start=True)
    with WebhookReceiver() as receiver:
        channel = notifications.add_channel(platform, acc.user, "webhook", receiver.url)
        assert channel.secret is not None
        async with running_worker(platform, topology, "watch-1", engine=engine_options(INTERVAL),
                                  sync_interval=SYNC) as worker:
            upkeep = upkeep_of(worker)
            own = f"sb{bot.id}-"
            assert await until(lambda: any(o["status"] == "NEW" and o["client_id"].startswith(own)
                                           for o in simex.admin.orders(acc.sim_account)), 30)
            # a check that saw sealbot's own resting order: a clean account, nothing flagged
            seen = upkeep.stats.checked.get(str(acc.account), 0)
            assert await until(lambda: upkeep.stats.checked.get(str(acc.account), 0) > seen, 3 * INTERVAL)
            assert upkeep.stats.findings == 0 and not _alerts(platform, "watchdog.foreign_order")

            await thief_order(simex, acc.key, acc.secret, f"sb{bot.id}-42-b")
            placed = time.monotonic()
            assert await until(lambda: _alerts(platform, "watchdog.foreign_order"), 5 * INTERVAL, step=0.02)
            flagged_after = time.monotonic() - placed
            print(f"flagged {flagged_after:.2f} s after the order; slowest check {upkeep.stats.slowest_check:.3f} s")
            # flagged by the next check: at most one interval of waiting, one upkeep pass to
            # notice it is due, and the check itself
            slowest = upkeep.stats.slowest_check
            assert flagged_after <= INTERVAL + SYNC + 2 * slowest + 0.5, (flagged_after, slowest)
            assert await until(lambda: receiver.received, 5)
            assert _statuses(platform) == {"paused"}
            live = worker.runner.accounts[str(acc.account)].bots[str(bot.id)]
            assert live.record.status == "paused" and "watchdog" in (live.record.status_reason or "")
            await asyncio.sleep(2 * INTERVAL)  # flagged once, not on every later check
        [alert] = _alerts(platform, "watchdog.foreign_order")
    assert alert.level == "critical" and f"sb{bot.id}-42-b" in alert.message
    assert alert.deliveries == {f"webhook:{channel.channel.id}": {"ok": True}}
    [(headers, body)] = receiver.received
    assert json.loads(body)["code"] == "watchdog.foreign_order"
    assert verify_webhook(channel.secret, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER],
                          now=time.time())


async def test_a_worker_taking_a_partition_over_continues_from_the_stored_baseline(
        pg_url: str, topology: Topology, tmp_path: Path, simex: SimexServer) -> None:
    """Withdrawals are enabled on the key between the first owner's last check and the
    next owner's first: the new owner has nothing in memory, yet flags the drift against
    the report the first owner stored."""
    platform = make_platform(tmp_path, pg_url, simex)
    acc = await linked_account(platform, simex, "drift")
    create_bot(platform, acc.user, acc.account, "dca", "runs", DCA, start=True)

    def checked_at() -> object:
        with platform.uow() as uow:
            return uow.session.scalar(sa.select(ExchangeAccount.permission_checked_at)
                                      .where(ExchangeAccount.id == acc.account))

    async with running_worker(platform, topology, "first", engine=engine_options(INTERVAL),
                              sync_interval=SYNC) as first:
        assert await until(lambda: upkeep_of(first).stats.checked.get(str(acc.account)), 3 * INTERVAL)
        baseline = checked_at()
        assert baseline is not None and upkeep_of(first).stats.findings == 0
    assert not _alerts(platform, "watchdog.permission_drift")

    simex.admin.update_key(acc.key, permissions=["reading", "spot", "withdrawals"])
    async with running_worker(platform, topology, "second", engine=engine_options(INTERVAL),
                              sync_interval=SYNC) as second:
        assert await until(lambda: _alerts(platform, "watchdog.permission_drift"), 3 * INTERVAL)
        assert upkeep_of(second).stats.checked.get(str(acc.account)) == 1
        assert await until(lambda: _statuses(platform) == {"paused"}, 5)
    [alert] = _alerts(platform, "watchdog.permission_drift")
    assert alert.level == "critical" and "withdrawals were enabled" in alert.message


async def test_each_account_is_watched_by_its_partitions_owner_alone(
        pg_url: str, topology: Topology, tmp_path: Path, simex: SimexServer) -> None:
    platform = make_platform(tmp_path, pg_url, simex)
    accounts = [str((await linked_account(platform, simex, f"spread{i}")).account) for i in range(6)]
    store = PartitionStore(platform.session_factory, topology.partitions)
    assert len({store.partition_of(a) for a in accounts}) > 1
    options = engine_options(1.0)
    async with running_worker(platform, topology, "a", engine=options, sync_interval=SYNC) as a, \
            running_worker(platform, topology, "b", engine=options, sync_interval=SYNC, owns_all=False) as b:
        half = topology.partitions // 2
        assert await until(lambda: len(a.owned) == len(b.owned) == half, 30), (a.owned, b.owned)
        owner = {p: w for w in (a, b) for p in w.owned}
        before = {w.id: dict(upkeep_of(w).stats.checked) for w in (a, b)}
        await asyncio.sleep(3.5)  # three checks of every account at a 1 s interval
        assert {p: w for w in (a, b) for p in w.owned} == owner, "the shares moved during the test"
        for account in accounts:
            mine = owner[store.partition_of(account)]
            other = b if mine is a else a
            done = {w.id: upkeep_of(w).stats.checked.get(account, 0) - before[w.id].get(account, 0)
                    for w in (a, b)}
            assert done[mine.id] >= 2 and done[other.id] == 0, (account, done)
