"""A worker keeps the accounts of the partitions it owns in step with what users change
through the service layer after it claimed them, as the embedded engine does: a bot
started later runs, a kill switch stops the bots and cancels their open orders on the
exchange, a revoked account stops. And what the upkeep writes for a partition whose
epoch moved on (another worker claimed it) is refused by the fence."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sealbot.engine.runner import RunnerSettings
from sealbot.engine.scaleout.broker import Topology
from sealbot.engine.scaleout.partitions import PartitionStore
from sealbot.engine.scaleout.worker import WorkerOptions
from sealbot.services.bots import create_bot, set_bot_status
from sealbot.services.kill_switch import kill_switch
from sealbot.services.platform import Platform
from sealbot.services.scaleout import worker_for
from sealbot.simex import SimexServer
from sealbot.store.models import Bot, PortfolioSnapshot

from .conftest import BROKER_URL
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


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with wall_clock_simex() as server:
        yield server


def _snapshots(platform: Platform) -> int:
    with platform.uow() as uow:
        return int(uow.session.scalar(sa.select(sa.func.count()).select_from(PortfolioSnapshot)) or 0)


def _resting(simex: SimexServer, sim_account: int, prefix: str) -> list[dict[str, object]]:
    return [o for o in simex.admin.orders(sim_account)
            if o["status"] == "NEW" and str(o["client_id"]).startswith(prefix)]


async def test_a_worker_follows_bots_kill_switches_and_revocations_after_its_claim(
        pg_url: str, topology: Topology, tmp_path: Path, simex: SimexServer) -> None:
    platform = make_platform(tmp_path, pg_url, simex)
    async with running_worker(platform, topology, "sync-1") as worker:
        upkeep = upkeep_of(worker)
        # linked after the claim: the partition's claim could not have started it
        acc = await linked_account(platform, simex, "later")
        account_id = str(acc.account)
        dca = create_bot(platform, acc.user, acc.account, "dca", "started later", DCA)
        await asyncio.sleep(3 * upkeep.sync_interval)
        assert account_id not in worker.runner.accounts  # no running bot: nothing to run

        set_bot_status(platform, acc.user, dca.id, "running")
        assert await until(lambda: account_id in upkeep.stats.sync.started_accounts, 15), \
            "the worker never started the account"
        assert account_id in worker.runner.accounts
        # the base order fills, then the take-profit and safety orders rest on the exchange
        assert await until(lambda: _resting(simex, acc.sim_account, f"sb{dca.id}-"), 30), \
            f"the bot placed no resting order: {simex.admin.orders(acc.sim_account)}"

        # a second bot started on the account that now runs joins it
        other = create_bot(platform, acc.user, acc.account, "dca", "second", DCA, start=True)
        runner = worker.runner.accounts[account_id]
        assert await until(lambda: str(other.id) in runner.bots, 10)

        resting = _resting(simex, acc.sim_account, "sb")
        assert resting
        kill_switch(platform, acc.user, owner_id=acc.user, account_id=acc.account)
        # the kill journalled the cancels: the account's next poll or the upkeep's next
        # pass sends them, whichever comes first
        assert await until(lambda: not _resting(simex, acc.sim_account, "sb"), 15), "the kill switch left orders open"
        # stopped, the bots leave the runner (their pairs are no longer waited for)
        assert await until(lambda: not {str(dca.id), str(other.id)} & set(runner.bots), 5)
        with platform.uow() as uow:
            stored = {b.id: (b.status, b.pause_reason) for b in uow.session.scalars(sa.select(Bot))}
        assert stored == {dca.id: ("stopped", "kill switch"), other.id: ("stopped", "kill switch")}

        with platform.uow() as uow:
            uow.accounts.set_status(acc.user, acc.account, "revoked")
        assert await until(lambda: account_id in upkeep.stats.sync.stopped_accounts, 10), \
            "the revoked account still runs"
        assert account_id not in worker.runner.accounts
        assert upkeep.stats.fenced == 0


async def test_the_upkeep_of_a_partition_taken_over_is_fenced(
        pg_url: str, topology: Topology, tmp_path: Path, simex: SimexServer) -> None:
    """No broker round trip here: the worker's hook is driven by hand, so the moment the
    epoch moves is certain (with a live broker the worker's heartbeat would step down
    within a tick and race the upkeep)."""
    platform = make_platform(tmp_path, pg_url, simex)
    acc = await linked_account(platform, simex, "fenced")
    account_id = str(acc.account)
    options = WorkerOptions(BROKER_URL, topology, worker_id="stale",
                            runner=RunnerSettings(poll_interval=0.1, feed_interval=0.1, market_ttl=0))
    worker = worker_for(platform, options, engine=engine_options(), sync_interval=3600)
    upkeep = upkeep_of(worker)
    store = PartitionStore(platform.session_factory, topology.partitions)
    store.ensure()
    partition = store.partition_of(account_id)
    epoch = store.claim(partition, "stale")
    try:
        # control: at the current epoch a running bot's account is started (by the pass
        # the upkeep runs at once on a claim; the next one is an hour away)
        first = create_bot(platform, acc.user, acc.account, "dca", "first", DCA, start=True)
        await upkeep.claimed(partition, epoch, [])
        assert await until(lambda: upkeep.stats.passes == 1, 15)
        assert account_id in worker.runner.accounts and upkeep.stats.fenced == 0
        assert await until(lambda: _resting(simex, acc.sim_account, f"sb{first.id}-"), 30)
        assert set(await upkeep.portfolio.refresh_once()) == {account_id} and _snapshots(platform) == 1

        store.claim(partition, "another worker")  # the partition moved on while this worker was away
        kill_switch(platform, acc.user, owner_id=acc.user, account_id=acc.account)
        await upkeep.pass_once()
        assert upkeep.stats.fenced >= 1
        assert upkeep.stats.sync.cancelled_orders == 0
        # the stale owner cancelled nothing on the exchange: only the new owner may
        assert _resting(simex, acc.sim_account, f"sb{first.id}-")
        assert await upkeep.portfolio.refresh_once() == {} and _snapshots(platform) == 1  # no stale snapshot
    finally:
        await upkeep.left(partition)
        assert account_id not in worker.runner.accounts
