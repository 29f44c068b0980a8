"""A paper account under the engine: its resting orders fill when the market trades
through them (the engine polls trades; it never calls ``PaperVenue.on_price``)."""

from __future__ import annotations

from sealbot.engine.journal import AccountRecord
from sealbot.engine.runner import InProcessRunner, RunnerSettings
from sealbot.simex import SimexServer
from sealbot.venues.base import Venue
from sealbot.venues.paper import PaperVenue

from .simex_env import SimexTime
from .test_engine_paper_market_identity import _paper, simex  # noqa: F401  (the simex fixture)
from .test_engine_shared_prices import _seed


async def test_a_paper_dcas_take_profit_fills_and_the_next_deal_starts(
        simex: SimexServer, database_url: str) -> None:  # noqa: F811
    journal, ids = _seed(database_url, 1)  # a DCA bot: take profit 0.2 %, safety orders 0.3 % apart
    clock = SimexTime(simex.admin.clock()["now_ms"])
    papers: dict[str, PaperVenue] = {}

    async def factory(account: AccountRecord) -> Venue:
        papers[account.id] = _paper(simex.base_url, clock=clock.now)
        return papers[account.id]

    runner = InProcessRunner(journal, factory, clock=clock,
                             settings=RunnerSettings(background=False, poll_feeds=True, market_ttl=30))
    try:
        await runner.start_account(ids[0])
        account = runner.accounts[ids[0]]
        for _ in range(60):  # an hour of the replayed market, polled each minute
            clock.ms = simex.admin.set_clock(advance_seconds=60)["now_ms"]
            await runner.poll_feeds_once()
            await account.drain()
            await account.poll_once()
            await account.drain()
        fills = papers[ids[0]]._fills
        # Before, only the base order's market buy ever filled: the take profit rested forever.
        assert any(f.client_id.text == "sb1-1-tp1" and f.is_maker for f in fills), fills
        assert any(f.client_id.text == "sb1-2-bo" for f in fills)
    finally:
        await runner.stop()
