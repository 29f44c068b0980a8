"""A start whose first ticker fetch fails waits for a reference price instead of letting
the guard refuse the bot's first order as unjudgeable and pause the bot (found by the
scale-out chaos test: after a takeover under exchange faults, a DCA deal's closing order
was refused for "no reference price", its bot paused and the deal stayed open)."""

from __future__ import annotations

from decimal import Decimal

from sealbot.domain import Pair
from sealbot.engine.journal import BotStatus
from sealbot.venues.base import Ticker
from sealbot.venues.errors import ExchangeUnavailable

from .fakes import FakeVenue
from .test_engine_runner import candle, setup, started


class FlakyTicker(FakeVenue):
    """The ticker endpoint fails ``failures`` times, then answers."""

    failures = 0

    async def fetch_ticker(self, pair: Pair) -> Ticker:
        if self.failures:
            self.failures -= 1
            raise ExchangeUnavailable(self.name, "the exchange is unavailable or timed out")
        return await super().fetch_ticker(pair)


async def test_a_start_without_a_reference_price_waits_for_one_instead_of_pausing_the_bot() -> None:
    journal, _, clock = setup()
    venue = FlakyTicker(now=clock.now)
    venue.failures = 2  # the start's market refresh and its reconcile both miss the ticker
    runner, acc = await started(journal, venue, clock)
    assert acc.needs_reconcile  # no reference price yet: the bots must not act
    runner.hub.publish("fake", candle(0, "100"))
    await acc.drain()  # reconciles first: the ticker answers now
    assert journal.data.bots["7"].status == BotStatus.RUNNING, journal.data.bots["7"].status_reason
    assert venue.created, "the base order was not placed"
    assert not [e for e in journal.data.orders.values() if e.reason and "guard" in e.reason]
    assert acc.market.snapshot(Pair("BTC", "USDT")).reference_price == Decimal(100)
    await runner.stop()
