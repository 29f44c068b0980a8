"""A bot on a pair the exchange does not list can never get a reference price. The
account used to wait for one before any of its bots acted, so one typo (BTC/USDTT)
froze every bot of the account, every 2 s "no reference price for BTC/USDTT yet".
Now the bots trading such a pair are paused with an alert and the others trade; a
bot the user stops or deletes leaves the runner, so a pair only it traded is no
longer waited for either."""

from __future__ import annotations

from decimal import Decimal

from sealbot.domain import AlertLevel, MarketRules, Pair
from sealbot.engine.journal import BotRecord, BotStatus, MemoryJournal
from sealbot.services.engine_sync import AccountSync
from sealbot.venues.base import Ticker
from sealbot.venues.errors import VenueError

from .fakes import FakeVenue
from .test_engine_runner import ACCOUNT, BTC, candle, dca_config, setup, started

TYPO = Pair("BTC", "USDTT")
QUIET = Pair("ETH", "USDT")  # listed, but its ticker never answers


class ListingVenue(FakeVenue):
    """Lists BTC/USDT and ETH/USDT; a ticker is refused for anything else, as an exchange
    refuses an unknown symbol, and ETH/USDT's never answers."""

    async def load_markets(self) -> dict[Pair, MarketRules]:
        return {p: MarketRules(p, Decimal("0.01"), Decimal("0.0001"), Decimal(0), Decimal(5)) for p in (BTC, QUIET)}

    async def fetch_ticker(self, pair: Pair) -> Ticker:
        if pair != BTC:
            raise VenueError(self.name, f"no ticker for {pair}")
        return await super().fetch_ticker(pair)


def _second_bot(journal: MemoryJournal, pair: Pair) -> None:
    markets = [{"pair": pair.symbol, "tick_size": "0.01", "step_size": "0.0001"}]
    with journal.transaction() as tx:
        tx.save_bot(BotRecord("8", "alice", ACCOUNT.id, "dca", dca_config("8", markets=markets), None))


async def test_a_bot_on_an_unlisted_pair_is_paused_with_an_alert_and_the_others_trade() -> None:
    journal, _, clock = setup()
    _second_bot(journal, TYPO)
    venue = ListingVenue(now=clock.now)
    alerts: list[object] = []
    runner, acc = await started(journal, venue, clock, alerts=alerts)
    assert not acc.needs_reconcile, "one unlisted pair held up the whole account"
    typo = journal.data.bots["8"]
    assert typo.status == BotStatus.PAUSED and "does not list BTC/USDTT" in (typo.status_reason or "")
    [alert] = alerts
    assert alert.code == "market.unlisted" and alert.bot == "8" and alert.level is AlertLevel.CRITICAL
    runner.hub.publish("fake", candle(0, "100"))
    await acc.drain()
    assert journal.data.bots["7"].status == BotStatus.RUNNING
    assert [c.split("-")[0] for c in venue.created] == ["sb7"], "the listed bot did not trade"
    await acc.poll_once()  # the unlisted pair is not waited for at the next poll either
    assert not acc.needs_reconcile and len(alerts) == 1


async def _blocked_by_a_quiet_pair() -> tuple[MemoryJournal, ListingVenue, AccountSync]:
    journal, _, clock = setup()
    _second_bot(journal, QUIET)
    venue = ListingVenue(now=clock.now)
    runner, acc = await started(journal, venue, clock)
    assert acc.needs_reconcile  # a listed pair without a price: the account waits, as for a passing fault
    return journal, venue, AccountSync(runner, journal)


async def _trades_after_sync(journal: MemoryJournal, venue: ListingVenue, sync: AccountSync) -> None:
    report = await sync.sync({ACCOUNT.id: ACCOUNT}, [ACCOUNT.id])
    acc = sync.runner.accounts[ACCOUNT.id]
    assert report.unloaded == ["8"] and "8" not in acc.bots
    sync.runner.hub.publish("fake", candle(0, "100"))
    await acc.drain()
    assert [c.split("-")[0] for c in venue.created] == ["sb7"], "the stopped bot's pair still held up the account"
    assert not acc.needs_reconcile


async def test_a_stopped_bot_leaves_the_runner_and_no_longer_holds_up_the_account() -> None:
    journal, venue, sync = await _blocked_by_a_quiet_pair()
    with journal.transaction() as tx:
        record = tx.get_bot("8")
        assert record is not None
        tx.save_bot(BotRecord(record.id, record.user, record.account, record.kind, record.config, record.state,
                              status=BotStatus.STOPPED, status_reason="stopped by its owner"))
    await _trades_after_sync(journal, venue, sync)


async def test_a_deleted_bot_leaves_the_runner() -> None:
    journal, venue, sync = await _blocked_by_a_quiet_pair()
    del journal.data.bots["8"]
    await _trades_after_sync(journal, venue, sync)
