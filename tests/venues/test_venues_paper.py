"""Paper venue: fills on supplied prices, balances and fees exact in Decimal."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealbot.domain import (
    ClientOrderId,
    FeeSchedule,
    MarketRules,
    Order,
    OrderStatus,
    OrderType,
    Pair,
    Side,
    TimeInForce,
)
from sealbot.domain.evolve import evolve
from sealbot.venues.base import Balance, Ticker, Venue
from sealbot.venues.errors import ExchangeRejectedOrder, InsufficientFunds, UnknownOrder
from sealbot.venues.paper import PaperVenue, ticker_price_source

PAIR = Pair("BTC", "USDT")
RULES = MarketRules(PAIR, tick_size=Decimal("0.01"), step_size=Decimal("0.00001"),
                    min_amount=Decimal("0.00001"), min_notional=Decimal("5"))
FEES = FeeSchedule(maker=Decimal("0.001"), taker=Decimal("0.002"))
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def D(text: str) -> Decimal:
    return Decimal(text)


def _venue(price: str = "40000", usdt: str = "10000", btc: str = "0") -> tuple[PaperVenue, dict[Pair, Decimal]]:
    prices = {PAIR: D(price)}

    async def source(pair: Pair) -> Decimal:
        return prices[pair]

    venue = PaperVenue({PAIR: RULES}, {"USDT": D(usdt), "BTC": D(btc)}, fees=FEES, price_source=source,
                       clock=lambda: T0)
    return venue, prices


def _order(step: str, side: Side, kind: OrderType, amount: str, price: str | None = None,
           stop: str | None = None) -> Order:
    return Order(ClientOrderId("B1", 1, step), PAIR, side, kind, D(amount), D(price) if price else None,
                 D(stop) if stop else None)


async def test_market_buy_fills_at_the_price_and_charges_taker_fee_in_base() -> None:
    venue, _ = _venue()
    order = await venue.create_order(_order("b", Side.BUY, OrderType.MARKET, "0.1"))
    assert order.status is OrderStatus.FILLED and order.average_price == D("40000")
    balances = await venue.fetch_balances()
    assert balances["USDT"].free == D("6000.0")  # 10000 - 0.1 * 40000
    assert balances["BTC"].free == D("0.0998")  # 0.1 - 0.2 % taker fee
    [fill] = await venue.fetch_my_trades(PAIR)
    assert (fill.fee, fill.fee_currency, fill.is_maker) == (D("0.0002"), "BTC", False)


async def test_resting_limit_buy_reserves_funds_and_fills_when_price_trades_through() -> None:
    venue, _ = _venue()
    await venue.create_order(_order("b", Side.BUY, OrderType.LIMIT, "0.1", "39000"))
    balances = await venue.fetch_balances()
    assert (balances["USDT"].free, balances["USDT"].used) == (D("6100.0"), D("3900.0"))
    assert venue.on_price(PAIR, D("39000"), T0 + timedelta(minutes=1)) == []  # a touch is not enough
    [fill] = venue.on_price(PAIR, D("38999.99"), T0 + timedelta(minutes=2))
    assert (fill.price, fill.amount, fill.fee, fill.is_maker) == (D("39000"), D("0.1"), D("0.0001"), True)
    balances = await venue.fetch_balances()
    assert balances["USDT"].total == D("6100.0") and balances["BTC"].free == D("0.0999")
    assert (await venue.fetch_order(ClientOrderId("B1", 1, "b"), PAIR)).status is OrderStatus.FILLED


async def test_asking_for_trades_meets_resting_orders_with_the_price_of_now() -> None:
    # The engine polls trades and never calls on_price: a resting order (a DCA's take
    # profit) never filled under it, however far the price went.
    venue, prices = _venue()
    await venue.create_order(_order("b", Side.BUY, OrderType.LIMIT, "0.1", "39000"))
    prices[PAIR] = D("39000")
    assert await venue.fetch_my_trades(PAIR) == []  # a touch is not enough
    prices[PAIR] = D("38500")
    [fill] = await venue.fetch_my_trades(PAIR)
    assert (fill.client_id.step, fill.price, fill.is_maker, fill.at) == ("b", D("39000"), True, T0)
    assert await venue.fetch_my_trades(PAIR) == [fill]  # once


async def test_limit_sell_fee_is_charged_in_quote() -> None:
    venue, _ = _venue(usdt="0", btc="1")
    await venue.create_order(_order("s", Side.SELL, OrderType.LIMIT, "0.5", "41000.50"))
    [fill] = venue.on_price(PAIR, D("41001"), T0)
    assert fill.fee == D("20.50025") and fill.fee_currency == "USDT"  # 0.5 * 41000.50 * 0.001
    balances = await venue.fetch_balances()
    assert balances["USDT"].free == D("20479.74975") and balances["BTC"].total == D("0.5")


async def test_marketable_limit_fills_at_the_better_market_price_and_releases_the_rest() -> None:
    venue, _ = _venue()
    order = await venue.create_order(_order("b", Side.BUY, OrderType.LIMIT, "0.1", "41000"))
    assert order.status is OrderStatus.FILLED and order.average_price == D("40000")
    balances = await venue.fetch_balances()
    assert balances["USDT"].used == 0 and balances["USDT"].free == D("6000.0")


async def test_limit_maker_that_would_take_is_rejected() -> None:
    venue, _ = _venue()
    with pytest.raises(ExchangeRejectedOrder, match="immediately match"):
        await venue.create_order(_order("m", Side.BUY, OrderType.LIMIT_MAKER, "0.1", "40001"))


async def test_stop_loss_limit_triggers_then_fills() -> None:
    venue, _ = _venue(usdt="0", btc="1")
    await venue.create_order(_order("sl", Side.SELL, OrderType.STOP_LOSS_LIMIT, "1", "38000", stop="38500"))
    assert venue.on_price(PAIR, D("39000"), T0) == []
    [fill] = venue.on_price(PAIR, D("38400"), T0)  # triggered, and 38400 >= 38000: fills as taker
    assert fill.price == D("38400") and not fill.is_maker and fill.fee == D("76.8")
    order = await venue.fetch_order(ClientOrderId("B1", 1, "sl"), PAIR)
    assert order.status is OrderStatus.FILLED and order.average_price == D("38400")


async def test_take_profit_limit_waits_for_its_stop() -> None:
    venue, _ = _venue(usdt="0", btc="1")
    await venue.create_order(_order("tp", Side.SELL, OrderType.TAKE_PROFIT_LIMIT, "1", "42000", stop="42000"))
    assert venue.on_price(PAIR, D("41999"), T0) == []
    [fill] = venue.on_price(PAIR, D("42000"), T0)
    assert fill.price == D("42000") and not fill.is_maker


async def test_cancel_releases_reserved_funds() -> None:
    venue, _ = _venue()
    await venue.create_order(_order("b", Side.BUY, OrderType.LIMIT, "0.1", "39000"))
    canceled = await venue.cancel_order(ClientOrderId("B1", 1, "b"), PAIR)
    assert canceled.status is OrderStatus.CANCELED
    balances = await venue.fetch_balances()
    assert balances["USDT"].free == D("10000") and balances["USDT"].used == 0
    assert await venue.fetch_open_orders() == []
    with pytest.raises(UnknownOrder):
        await venue.cancel_order(ClientOrderId("B1", 1, "b"), PAIR)


async def test_rules_funds_and_duplicates_are_enforced() -> None:
    venue, _ = _venue(usdt="100")
    with pytest.raises(InsufficientFunds):
        await venue.create_order(_order("big", Side.BUY, OrderType.LIMIT, "0.1", "39000"))
    with pytest.raises(ExchangeRejectedOrder) as caught:
        await venue.create_order(_order("tiny", Side.BUY, OrderType.LIMIT, "0.0001", "39000"))
    assert caught.value.field == "notional"
    with pytest.raises(ExchangeRejectedOrder) as caught:
        await venue.create_order(_order("odd", Side.BUY, OrderType.LIMIT, "0.001", "39000.001"))
    assert caught.value.field == "price"
    await venue.create_order(_order("ok", Side.BUY, OrderType.LIMIT, "0.001", "39000"))
    with pytest.raises(ExchangeRejectedOrder, match="client id"):
        await venue.create_order(_order("ok", Side.BUY, OrderType.LIMIT, "0.001", "39000"))


async def test_snapshot_round_trips_through_json() -> None:
    venue, _ = _venue()
    await venue.create_order(_order("a", Side.BUY, OrderType.MARKET, "0.1"))
    await venue.create_order(_order("b", Side.BUY, OrderType.LIMIT, "0.05", "39000"))
    data = json.loads(json.dumps(venue.snapshot()))
    copy, _ = _venue(usdt="0")
    copy.restore(data)
    assert await copy.fetch_balances() == await venue.fetch_balances()
    assert await copy.fetch_open_orders() == await venue.fetch_open_orders()
    assert await copy.fetch_my_trades(PAIR) == await venue.fetch_my_trades(PAIR)
    assert copy.on_price(PAIR, D("38000"), T0) == venue.on_price(PAIR, D("38000"), T0)


class _TickerVenue(PaperVenue):
    async def fetch_ticker(self, pair: Pair) -> Ticker:
        return Ticker(pair, D("99"), D("101"), None, T0)


async def test_prices_can_come_from_another_venue() -> None:
    data: Venue = _TickerVenue({})
    source = ticker_price_source(data)
    assert await source(PAIR) == D("100")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([Side.BUY, Side.SELL]),
                          st.integers(min_value=1, max_value=500),  # amount in 0.001 BTC
                          st.integers(min_value=-300, max_value=300)),  # limit offset in USDT
                min_size=1, max_size=12),
       st.lists(st.integers(min_value=39500, max_value=40500), max_size=15))
async def test_value_is_conserved_up_to_fees(orders: list[tuple[Side, int, int]], path: list[int]) -> None:
    """Whatever happens, USDT + BTC (valued at each fill's own price) only ever loses the fees."""
    venue, _ = _venue(usdt="100000", btc="2")
    for i, (side, milli, offset) in enumerate(orders):
        order = Order(ClientOrderId("P", 1, f"o{i}"), PAIR, side, OrderType.LIMIT,
                      D(milli) / 1000, D(40000 + offset))
        with contextlib.suppress(InsufficientFunds, ExchangeRejectedOrder):
            await venue.create_order(order)
    for price in path:
        venue.on_price(PAIR, D(price), T0)
    balances = await venue.fetch_balances()
    fills = await venue.fetch_my_trades(PAIR)
    usdt = D("100000") + sum((-f.notional if f.side is Side.BUY else f.notional - f.fee) for f in fills)
    btc = D("2") + sum((f.amount - f.fee if f.side is Side.BUY else -f.amount) for f in fills)
    assert balances.get("USDT", Balance("USDT")).total == usdt
    assert balances.get("BTC", Balance("BTC")).total == btc
    assert all(b.free >= 0 and b.used >= 0 for b in balances.values())


async def test_ioc_limit_that_cannot_match_expires_and_releases_funds() -> None:
    venue, _ = _venue()
    ioc = evolve(_order("ioc", Side.BUY, OrderType.LIMIT, "0.1", "39000"), time_in_force=TimeInForce.IOC)
    assert (await venue.create_order(ioc)).status is OrderStatus.EXPIRED
    assert (await venue.fetch_balances())["USDT"].free == D("10000")
    assert venue.on_price(PAIR, D("38000"), T0) == []
    fok = evolve(_order("fok", Side.BUY, OrderType.LIMIT, "0.1", "40000"), time_in_force=TimeInForce.FOK)
    assert (await venue.create_order(fok)).status is OrderStatus.FILLED  # marketable: fills in full
