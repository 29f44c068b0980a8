"""The guard refuses the leaked-key pattern and keeps each owner's limits separate."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealbot.domain import ClientOrderId, Order, OrderType, Pair, Refused, Side
from sealbot.engine.guard import GuardLimits, GuardPolicy, MarketSnapshot, SpentToday, check

ILLIQUID = Pair("PUMP", "USDT")
BTC = Pair("BTC", "USDT")


def order(pair: Pair = BTC, side: Side = Side.BUY, amount: str = "0.01", price: str | None = "100",
          kind: OrderType = OrderType.LIMIT, step: str = "b") -> Order:
    return Order(ClientOrderId("b1", 1, step), pair, side, kind, Decimal(amount),
                 None if price is None else Decimal(price))


def market(pair: Pair = BTC, last: str = "100", volume: str = "10000000", bid: str | None = None,
           ask: str | None = None) -> MarketSnapshot:
    return MarketSnapshot(pair, bid=None if bid is None else Decimal(bid), ask=None if ask is None else Decimal(ask),
                          last=Decimal(last), quote_volume_24h=Decimal(volume))


def test_a_buy_at_three_times_the_price_of_an_illiquid_pair_is_refused_with_the_reason() -> None:
    limits = GuardLimits(min_quote_volume_24h=Decimal(0))
    decision = check(order(ILLIQUID, price="0.30", amount="100"), limits, market(ILLIQUID, last="0.10"))
    assert not decision.allowed
    assert decision.rule == "deviation"
    assert "200.00% above the reference price" in decision.reason
    with pytest.raises(Refused, match="guard:deviation"):
        decision.raise_if_refused()


def test_with_default_limits_the_illiquid_pair_is_refused_for_its_volume_first() -> None:
    decision = check(order(ILLIQUID, price="0.30", amount="100"), GuardLimits(), market(ILLIQUID, "0.10", "2000"))
    assert (decision.allowed, decision.rule) == (False, "min_volume")
    assert "2000" in decision.reason


def test_the_reference_is_the_book_mid_when_both_sides_are_quoted() -> None:
    snap = market(last="50", bid="99", ask="101")
    assert snap.reference_price == Decimal(100)
    assert check(order(price="104"), GuardLimits(), snap).allowed
    assert check(order(price="106"), GuardLimits(), snap).rule == "deviation"


def test_a_sell_far_below_the_price_is_refused_but_a_passive_buy_below_it_is_not() -> None:
    assert check(order(side=Side.SELL, price="80"), GuardLimits(), market()).rule == "deviation"
    assert check(order(side=Side.BUY, price="80"), GuardLimits(), market()).allowed
    assert check(order(side=Side.SELL, price="130"), GuardLimits(), market()).allowed


def test_without_any_reference_price_the_guard_refuses() -> None:
    snap = MarketSnapshot(BTC, quote_volume_24h=Decimal(10**9))
    assert check(order(), GuardLimits(), snap).rule == "reference_price"


def test_pairs_outside_the_allow_list_are_refused() -> None:
    limits = GuardLimits(allowed_pairs=frozenset({Pair("ETH", "USDT")}))
    decision = check(order(), limits, market())
    assert (decision.rule, decision.reason) == ("allow_list", "BTC/USDT is not in the allow-list")


def test_per_order_notional_uses_the_reference_price_for_market_orders() -> None:
    limits = GuardLimits(max_order_notional=Decimal(500))
    assert check(order(amount="4", price=None, kind=OrderType.MARKET), limits, market()).allowed
    refused = check(order(amount="6", price=None, kind=OrderType.MARKET), limits, market())
    assert refused.rule == "order_notional" and refused.notional == Decimal(600)


def test_closing_orders_are_never_trapped_by_spend_limits() -> None:
    limits = GuardLimits(max_order_notional=Decimal(10), max_daily_notional=Decimal(10))
    panic = order(side=Side.SELL, amount="5", price=None, kind=OrderType.MARKET)
    assert check(panic, limits, market(), Decimal(10**6), closing=True).allowed
    assert not check(panic, limits, market(), Decimal(10**6)).allowed


def test_the_daily_limit_judges_the_users_total_and_an_accounts_own_limit_its_own_total() -> None:
    policy = GuardPolicy(users={"alice": GuardLimits(max_daily_notional=Decimal(250))},
                         accounts={"a2": GuardLimits(max_daily_notional=Decimal(120))})
    buy = order(amount="1")  # 100 USDT
    first = policy.check(buy, user="alice", account="a1", market=market(), spent=SpentToday())
    assert first.allowed and first.counted == Decimal(100)
    assert policy.check(buy, user="alice", account="a1", market=market(),
                        spent=SpentToday(Decimal(200), Decimal(200))).rule == "daily_notional"
    # a2's own limit judges a2's total; the user's limit still judges the user's
    assert policy.check(buy, user="alice", account="a2", market=market(),
                        spent=SpentToday(Decimal(100), Decimal(0))).allowed
    assert policy.check(buy, user="alice", account="a2", market=market(),
                        spent=SpentToday(Decimal(100), Decimal(30))).rule == "daily_notional"
    # bob has only the default limits: alice's numbers are not his (the caller asks per user)
    assert policy.check(buy, user="bob", account="b1", market=market()).allowed
    assert policy.daily_limited("bob", "b1")
    assert not GuardPolicy(GuardLimits(max_daily_notional=None)).daily_limited("bob", "b1")


def test_a_closing_order_is_never_held_back_and_never_counts() -> None:
    policy = GuardPolicy(users={"alice": GuardLimits(max_daily_notional=Decimal(50))})
    sell = order(side=Side.SELL, amount="1")
    closing = policy.check(sell, user="alice", account="a1", market=market(),
                           spent=SpentToday(Decimal(10**6), Decimal(10**6)), closing=True)
    assert closing.allowed and closing.notional == Decimal(100) and closing.counted is None
    refused = policy.check(order(amount="1"), user="alice", account="a1", market=market())
    assert refused.rule == "daily_notional"
    assert refused.counted is None


def test_an_account_limit_applies_on_top_of_the_users() -> None:
    policy = GuardPolicy(accounts={"a2": GuardLimits(max_order_notional=Decimal(50))})
    buy = order(amount="1")
    assert policy.check(buy, user="alice", account="a1", market=market()).allowed
    assert policy.check(buy, user="alice", account="a2", market=market()).rule == "order_notional"


def test_limits_round_trip_through_json_and_refuse_unknown_settings() -> None:
    limits = GuardLimits(max_deviation_pct=Decimal("2.5"), allowed_pairs=frozenset({BTC}), max_daily_notional=None)
    assert GuardLimits.from_dict(limits.to_dict()) == limits
    with pytest.raises(ValueError, match="max_deviaton"):
        GuardLimits.from_dict({"max_deviaton_pct": "1"})


@given(ratio=st.decimals(min_value=Decimal("0.2"), max_value=Decimal("10"), places=3))
def test_a_buy_is_allowed_exactly_when_it_is_within_the_deviation_limit(ratio: Decimal) -> None:
    limits = GuardLimits(max_deviation_pct=Decimal(5), max_order_notional=None, max_daily_notional=None)
    decision = check(order(price=str(100 * ratio)), limits, market())
    assert decision.allowed == (ratio <= Decimal("1.05"))


async def test_in_one_engine_a_users_tight_limit_refuses_and_pauses_only_that_users_bot() -> None:
    """Two users' bots on one runner, same pair, same candle: alice's per-user limit
    (and her paused bot and alert) leave bob's bot trading with the defaults."""
    from sealbot.engine.journal import AccountRecord, BotRecord, BotStatus
    from sealbot.engine.runner import InProcessRunner
    from sealbot.venues.base import Venue

    from .fakes import FakeVenue
    from .test_engine_runner import SETTINGS, candle, dca_config
    from .test_engine_runner import setup as runner_setup

    journal, _alice_venue, clock = runner_setup(base_order_type="limit")  # alice: account "1", bot "7"
    bob = AccountRecord("2", "bob", "fake")
    journal.add_account(bob)
    with journal.transaction() as tx:
        tx.save_bot(BotRecord("8", "bob", bob.id, "dca", dca_config("8", base_order_type="limit"), None))
    venues = {"1": FakeVenue(now=clock.now), "2": FakeVenue(now=clock.now)}

    async def factory(account: AccountRecord) -> Venue:
        return venues[account.id]

    policy = GuardPolicy(GuardLimits(min_quote_volume_24h=Decimal(0)),
                         users={"alice": GuardLimits(max_order_notional=Decimal(50), min_quote_volume_24h=Decimal(0))})
    alerts: list[object] = []

    async def sink(alert: object) -> None:
        alerts.append(alert)

    runner = InProcessRunner(journal, factory, guard=policy, clock=clock, settings=SETTINGS, alert_sink=sink)
    for account_id in ("1", "2"):
        await runner.start_account(account_id)
        runner.accounts[account_id].market.set(MarketSnapshot(BTC, last=Decimal(100), quote_volume_24h=Decimal(10**9)))
    runner.hub.publish("fake", candle(0, "100"))  # both bots want a 100 USDT base order
    for account_id in ("1", "2"):
        await runner.accounts[account_id].drain()
    assert venues["1"].created == [] and len(venues["2"].created) == 1
    refused = [e for e in journal.data.orders.values() if e.order.status.value == "rejected"]
    assert len(refused) == 1 and refused[0].bot == "7"
    assert str(refused[0].reason).startswith("guard order_notional:")
    assert journal.data.bots["7"].status == BotStatus.PAUSED and journal.data.bots["8"].status == BotStatus.RUNNING
    assert "guard.refused" in [a.code for a in alerts]  # type: ignore[attr-defined]
    assert {a.user for a in alerts} == {"alice"}  # type: ignore[attr-defined]  # nothing for bob
    await runner.stop()
