"""A DCA bot's ``stop_loss_and_disable_bot`` on simex: the stop sells, then the bot stops."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa

from sealbot.domain.money import floor_to_step
from sealbot.engine.guard import GuardLimits, GuardPolicy
from sealbot.engine.journal import AccountRecord
from sealbot.engine.runner import InProcessRunner, RunnerSettings
from sealbot.simex import SimexServer
from sealbot.store.models import Bot, DealRow
from sealbot.venues.base import Venue

from .simex_env import SimexTime, dca, seed, simex_venue


@pytest.fixture
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as sx:
        yield sx


async def test_stop_loss_and_disable_bot_sells_the_deal_before_the_bot_stops(simex: SimexServer,
                                                                             sqlite_url: str) -> None:
    # The engine refuses every order of a stopped bot: the bot used to stop with the
    # stop's cancels, so its market exit was refused and the coins stayed unsold.
    account = simex.admin.create_account("alice", {"USDT": "10000"})
    key = simex.admin.create_key(account["id"])
    config = dca(max_safety_orders=0, take_profit="5", stop_loss_percentage="0.1",
                 stop_loss_type="stop_loss_and_disable_bot")
    journal, account_id, (bot_id,) = seed(sqlite_url, [config])
    clock = SimexTime(simex.admin.clock()["now_ms"])

    async def factory(_a: AccountRecord) -> Venue:
        return simex_venue(simex.base_url, key["key"], key["secret"])

    runner = InProcessRunner(journal, factory, guard=GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0))),
                             clock=clock, settings=RunnerSettings(background=False, market_ttl=0))
    await runner.start_account(account_id)
    acc = runner.accounts[account_id]
    status = "running"
    for _minute in range(240):
        clock.ms = simex.admin.set_clock(advance_seconds=60)["now_ms"]
        await runner.poll_feeds_once()
        await acc.drain()
        await acc.poll_once()
        await acc.drain()
        with journal.session_factory() as s:
            status = s.get(Bot, int(bot_id)).status  # type: ignore[union-attr]
        if status != "running":
            break
    await runner.stop()
    assert status == "stopped"
    with journal.session_factory() as s:
        deal = s.scalars(sa.select(DealRow)).one()
    assert (deal.status, deal.close_reason) == ("closed", "stop_loss")
    assert deal.sold == floor_to_step(deal.bought, Decimal("0.00001"))  # all it held, down to the step
    btc = simex.admin.account(account["id"])["balances"]["BTC"]
    assert Decimal(btc["free"]) < Decimal("0.00001") and Decimal(btc["locked"]) == 0  # only dust below the step
