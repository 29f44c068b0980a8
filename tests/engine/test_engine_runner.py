"""The runner drives a real DCA bot through guard, journal and order manager."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sealbot.domain import AlertLevel, Candle, DealStatus, Order, OrderStatus, OrderType, Pair, Side
from sealbot.domain.evolve import evolve
from sealbot.engine.clock import FakeClock
from sealbot.engine.guard import GuardLimits, GuardPolicy, MarketSnapshot
from sealbot.engine.journal import AccountRecord, BotRecord, BotStatus, MemoryJournal
from sealbot.engine.runner import AccountRunner, InProcessRunner, RunnerSettings
from sealbot.venues.base import Venue
from sealbot.venues.errors import ExchangeUnavailable

from .fakes import T0, FakeVenue

BTC = Pair("BTC", "USDT")
ACCOUNT = AccountRecord("1", "alice", "fake")
SETTINGS = RunnerSettings(poll_feeds=False, background=False)
LOOSE = GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0)))


def dca_config(bot_id: str = "7", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "bot_id": bot_id,
        "markets": [{"pair": "BTC/USDT", "tick_size": "0.01", "step_size": "0.0001"}],
        "base_order_volume": "100",
        "take_profit": "1",
        "fees": {"maker": "0", "taker": "0"},
        "active_safety_orders_count": 0,
    }
    data.update(overrides)
    return data


def candle(i: int, close: str) -> Candle:
    c = Decimal(close)
    return Candle(BTC, "1m", T0 + timedelta(minutes=i), c, c, c, c, Decimal(10))


async def started(journal: MemoryJournal, venue: FakeVenue, clock: FakeClock, guard: GuardPolicy = LOOSE,
                  alerts: list[Any] | None = None) -> tuple[InProcessRunner, AccountRunner]:
    async def factory(_account: AccountRecord) -> Venue:
        return venue

    async def sink(alert: Any) -> None:
        if alerts is not None:
            alerts.append(alert)

    runner = InProcessRunner(journal, factory, guard=guard, clock=clock, settings=SETTINGS, alert_sink=sink)
    await runner.start_account(ACCOUNT.id)
    return runner, runner.accounts[ACCOUNT.id]


def setup(**config: Any) -> tuple[MemoryJournal, FakeVenue, FakeClock]:
    clock = FakeClock((T0 + timedelta(minutes=1)).timestamp())
    venue = FakeVenue(now=clock.now)
    journal = MemoryJournal()
    journal.add_account(ACCOUNT)
    with journal.transaction() as tx:
        tx.save_bot(BotRecord("7", "alice", ACCOUNT.id, "dca", dca_config(**config), None))
    return journal, venue, clock


async def step_market(runner: InProcessRunner, acc: AccountRunner, venue: FakeVenue, i: int, close: str) -> None:
    venue.price = Decimal(close)
    acc.market.set(MarketSnapshot(BTC, last=Decimal(close), quote_volume_24h=Decimal(10**9)))
    runner.hub.publish("fake", candle(i, close))
    await acc.drain()
    await acc.poll_once()
    await acc.drain()


async def test_a_dca_bot_opens_and_closes_a_deal_through_the_runner() -> None:
    journal, venue, clock = setup()
    runner, acc = await started(journal, venue, clock)
    await step_market(runner, acc, venue, 0, "100")
    base = venue.orders["sb7-1-b"] if "sb7-1-b" in venue.orders else next(iter(venue.orders.values()))
    assert base.type is OrderType.MARKET and base.status is OrderStatus.FILLED
    take_profit = [o for o in venue.orders.values() if o.type is OrderType.LIMIT]
    assert len(take_profit) == 1 and take_profit[0].price == Decimal("101.00")
    venue.fill(take_profit[0].client_id.text, take_profit[0].amount, Decimal(101))
    await step_market(runner, acc, venue, 1, "101")
    deals = list(journal.data.deals.values())
    assert len(deals) >= 1 and deals[0].status is DealStatus.CLOSED
    assert deals[0].received - deals[0].spent > Decimal("0.9")
    assert len(venue.created) == len(set(venue.created))
    # the bot's state was persisted with each step: a fresh runner reloads it
    stored = journal.data.bots["7"]
    assert stored.state is not None and stored.status == BotStatus.RUNNING
    await runner.stop()


async def test_a_restart_rebuilds_the_bot_from_the_journal_and_applies_fills_missed_while_down() -> None:
    journal, venue, clock = setup()
    runner, acc = await started(journal, venue, clock)
    await step_market(runner, acc, venue, 0, "100")
    await runner.stop()  # "crash"
    tp = next(o for o in venue.orders.values() if o.type is OrderType.LIMIT)
    venue.fill(tp.client_id.text, tp.amount, Decimal(101))  # filled while sealbot was down
    runner2, _acc2 = await started(journal, venue, clock)  # reconcile on start applies it
    deals = list(journal.data.deals.values())
    assert deals[0].status is DealStatus.CLOSED
    assert sum(1 for _ in journal.data.fills) == 2
    assert len(venue.created) == len(set(venue.created)) == 2
    await runner2.stop()


async def test_the_guard_refuses_a_buy_far_above_the_reference_pauses_the_bot_and_alerts() -> None:
    journal, venue, clock = setup(base_order_type="limit")
    alerts: list[Any] = []
    runner, acc = await started(journal, venue, clock, guard=LOOSE, alerts=alerts)
    acc.market.set(MarketSnapshot(BTC, last=Decimal("33.3"), quote_volume_24h=Decimal(10**9)))
    runner.hub.publish("fake", candle(0, "100"))  # one trade printed 100 on an illiquid book quoted at 33.3
    await acc.drain()
    assert venue.created == []
    refused = [e for e in journal.data.orders.values() if e.order.status is OrderStatus.REJECTED]
    assert len(refused) == 1 and refused[0].reason is not None and "guard deviation" in refused[0].reason
    assert journal.data.bots["7"].status == BotStatus.PAUSED
    assert journal.data.alerts[0].code == "guard.refused"
    assert alerts and alerts[0].level is AlertLevel.CRITICAL
    # a paused bot no longer trades on candles
    runner.hub.publish("fake", candle(1, "33.3"))
    await acc.drain()
    assert venue.created == []
    await runner.stop()


async def test_the_kill_switch_stops_bots_and_cancels_their_orders_and_panic_sell_closes_at_market() -> None:
    journal, venue, clock = setup()
    runner, acc = await started(journal, venue, clock)
    await step_market(runner, acc, venue, 0, "100")
    deal_no = next(iter(journal.data.deals.values())).no
    await runner.panic_sell(ACCOUNT.id, "7", deal_no)
    await acc.poll_once()
    await acc.drain()
    market_sells = [o for o in venue.orders.values() if o.type is OrderType.MARKET and o.side.value == "sell"]
    assert len(market_sells) == 1
    assert journal.data.deals[("7", deal_no)].status is DealStatus.CLOSED
    assert await runner.kill(user="alice") == 1
    assert journal.data.bots["7"].status == BotStatus.STOPPED
    assert all(o.status.is_final for o in venue.orders.values())
    assert await runner.kill(user="bob") == 0
    await runner.stop()


async def test_panic_sell_closes_a_paused_bots_deal_whose_take_profit_was_resting() -> None:
    """With a take profit resting, a close is two steps: cancel it, then, once the cancel
    is confirmed, sell at market. The second step is not the operator's event, and a
    paused bot (the watchdog's pause after a leaked key, say) had its exit refused
    ("no new orders"): the deal kept its coins."""
    journal, venue, clock = setup()
    runner, acc = await started(journal, venue, clock)
    await step_market(runner, acc, venue, 0, "100")
    deal_no = next(iter(journal.data.deals.values())).no
    assert any(o.side.value == "sell" and not o.status.is_final for o in venue.orders.values())  # the take profit
    await runner.pause_account(ACCOUNT.id, "watchdog: foreign order")
    await runner.panic_sell(ACCOUNT.id, "7", deal_no)
    for _ in range(3):
        await acc.poll_once()
        await acc.drain()
    market_sells = [o for o in venue.orders.values() if o.type is OrderType.MARKET and o.side.value == "sell"]
    assert len(market_sells) == 1
    assert journal.data.deals[("7", deal_no)].status is DealStatus.CLOSED
    assert journal.data.bots["7"].status == BotStatus.PAUSED  # still paused, its reason kept
    assert not [e for e in journal.data.orders.values() if e.order.status is OrderStatus.REJECTED]
    await runner.stop()


async def test_a_paused_bot_still_places_no_new_entry_or_take_profit() -> None:
    journal, venue, clock = setup()
    runner, acc = await started(journal, venue, clock)
    await runner.pause_account(ACCOUNT.id, "paused by its owner")
    await step_market(runner, acc, venue, 0, "100")
    assert venue.created == []
    await runner.stop()


async def test_a_timeout_on_send_never_duplicates_the_order() -> None:
    journal, venue, clock = setup()
    venue.faults = ["lost_answer"]
    runner, acc = await started(journal, venue, clock)
    await step_market(runner, acc, venue, 0, "100")
    assert len(venue.created) == len(set(venue.created)) == 2  # base + take profit, each once
    await runner.stop()


async def test_an_order_still_in_flight_keeps_the_account_reconciling_while_other_fills_are_applied() -> None:
    """On restart the reconcile finds a safety order whose request may still be travelling
    and applies a take profit filled while down; the bot, closing, asks to cancel that
    order. The account must go on reconciling until the order's fate is known: applying
    the fill used to clear the flag, the order stayed pending for good, and the deal
    never closed (found by the scale-out chaos test)."""
    journal, venue, clock = setup(max_safety_orders=1, active_safety_orders_count=1, safety_order_volume="100",
                                  safety_order_step_percentage="2")

    def lost_on_the_way(order: Order) -> None:
        if order.client_id.step == "so1":
            raise ExchangeUnavailable("fake", "timed out")  # the request never reached the exchange

    venue.on_create = lost_on_the_way
    runner, acc = await started(journal, venue, clock)
    await step_market(runner, acc, venue, 0, "100")
    assert "sb7-1-so1" not in venue.orders and acc.needs_reconcile
    await runner.stop()  # a crash
    venue.on_create = None
    tp = next(o for o in venue.orders.values() if o.type is OrderType.LIMIT and o.side is Side.SELL)
    venue.fill(tp.client_id.text, tp.amount, tp.price or Decimal(0))  # the take profit filled while down
    runner, acc = await started(journal, venue, clock)
    assert journal.data.orders["sb7-1-so1"].order.status is OrderStatus.PENDING
    assert acc.needs_reconcile, "so1 may still reach the exchange: its fate is unknown"
    clock.advance(acc.orders.in_flight_window)
    await acc.poll_once()
    await acc.drain()
    assert journal.data.orders["sb7-1-so1"].order.status is OrderStatus.CANCELED
    assert journal.data.deals[("7", 1)].status is DealStatus.CLOSED
    assert "sb7-1-so1" not in venue.orders and not acc.needs_reconcile
    await runner.stop()


def test_bot_records_are_plain_values() -> None:
    record = BotRecord("7", "alice", "1", "dca", dca_config(), None)
    assert evolve(record, status=BotStatus.PAUSED).status == "paused"
