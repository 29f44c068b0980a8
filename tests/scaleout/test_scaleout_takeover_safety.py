"""Safety decisions survive a partition moving to another worker.

A kill switch taken while the account's partition moves (its owner has left, the next
one has not claimed it yet: no sync pass of either sees the status change) is carried
out by the new owner: the kill journalled the cancels, and the new owner starts the
account (it has no running bot, so the claim started nothing) to send them. And the new
owner's watchdog does not report a foreign order the previous owner flagged (the flags
are in the database), while it reports a new one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.attacker import foreign_order_alerts, thief_order
from sealbot.engine.scaleout.broker import Topology
from sealbot.services.bots import create_bot
from sealbot.services.kill_switch import KILL_REASON, kill_switch
from sealbot.simex import SimexServer
from sealbot.store.models import Bot, WatchdogFlag

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
SYNC = 0.2


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with wall_clock_simex() as server:
        yield server


def _resting(simex: SimexServer, sim_account: int, prefix: str) -> list[dict[str, object]]:
    return [o for o in simex.admin.orders(sim_account)
            if o["status"] == "NEW" and str(o["client_id"]).startswith(prefix)]


async def test_a_kill_switch_taken_while_the_partition_moves_is_carried_out_by_the_new_owner(
        pg_url: str, topology: Topology, tmp_path: Path, simex: SimexServer) -> None:
    platform = make_platform(tmp_path, pg_url, simex)
    acc = await linked_account(platform, simex, "moving")
    dca = create_bot(platform, acc.user, acc.account, "dca", "resting orders", DCA, start=True)
    own = f"sb{dca.id}-"
    async with running_worker(platform, topology, "first", sync_interval=SYNC):
        # the base order fills, then the take-profit and safety orders rest on the exchange
        assert await until(lambda: _resting(simex, acc.sim_account, own), 30), simex.admin.orders(acc.sim_account)
    resting = _resting(simex, acc.sim_account, own)
    assert resting

    result = kill_switch(platform, acc.user, owner_id=acc.user, account_id=acc.account)  # between two owners
    assert result.stopped_bots == [dca.id] and result.cancel_requested >= len(resting)

    async with running_worker(platform, topology, "second", sync_interval=SYNC) as second:
        upkeep = upkeep_of(second)
        assert await until(lambda: not _resting(simex, acc.sim_account, own), 15), \
            f"the kill switch left orders open: {_resting(simex, acc.sim_account, own)}"
        # the cancels go out while the pass starts the account; the pass reports it once it is over
        assert await until(lambda: str(acc.account) in upkeep.stats.sync.cancel_starts, 15), upkeep.stats.sync
        assert upkeep.stats.fenced == 0
        # nothing left to cancel: a later pass starts nothing more
        starts = len(upkeep.stats.sync.started_accounts)
        await asyncio.sleep(5 * SYNC)
        assert len(upkeep.stats.sync.started_accounts) == starts
    with platform.uow() as uow:
        assert uow.session.scalar(sa.select(Bot.pause_reason).where(Bot.id == dca.id)) == KILL_REASON


async def test_the_new_owner_does_not_flag_again_what_the_previous_owner_flagged(
        pg_url: str, topology: Topology, tmp_path: Path, simex: SimexServer) -> None:
    platform = make_platform(tmp_path, pg_url, simex)
    acc = await linked_account(platform, simex, "flagged")
    create_bot(platform, acc.user, acc.account, "dca", "watched", {**DCA, "base_order_type": "limit"}, start=True)
    await thief_order(simex, acc.key, acc.secret, "thief-1")
    async with running_worker(platform, topology, "first", engine=engine_options(INTERVAL),
                              sync_interval=SYNC) as first:
        assert await until(lambda: foreign_order_alerts(platform), 3 * INTERVAL)
        assert upkeep_of(first).stats.findings == 1
    assert any(o["client_id"] == "thief-1" and o["status"] == "NEW" for o in simex.admin.orders(acc.sim_account))

    async with running_worker(platform, topology, "second", engine=engine_options(INTERVAL),
                              sync_interval=SYNC) as second:
        upkeep = upkeep_of(second)
        # two checks by the new owner, both seeing thief-1 still open
        assert await until(lambda: upkeep.stats.checked.get(str(acc.account), 0) >= 2, 4 * INTERVAL)
        assert upkeep.stats.findings == 0 and len(foreign_order_alerts(platform)) == 1
        await thief_order(simex, acc.key, acc.secret, "thief-2")  # a new one is reported
        assert await until(lambda: len(foreign_order_alerts(platform)) == 2, 4 * INTERVAL)
        assert upkeep.stats.findings == 1
    first_alert, second_alert = foreign_order_alerts(platform)
    assert "thief-1" in first_alert and "thief-2" in second_alert and "thief-1" not in second_alert
    with platform.uow() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(WatchdogFlag)) == 2
