"""Matching against the replayed candles, fees and balances, straight on the core."""

from __future__ import annotations

from decimal import ROUND_UP, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealbot.simex.clock import ClockError, MarketClock
from sealbot.simex.core import Exchange, OrderRequest
from sealbot.simex.errors import Reason, SimexError
from sealbot.simex.keys import ApiKey
from sealbot.simex.markets import DEFAULT_MARKETS, Bar, load_bars
from sealbot.simex.replay import Replay

START = 1_700_000_040_000  # a whole minute
BTC = DEFAULT_MARKETS[0]
BARS = load_bars(BTC.data_file, BTC.tick)
EIGHT = Decimal("0.00000001")


def _exchange() -> tuple[Exchange, int, ApiKey]:
    ex = Exchange(MarketClock(START, 0), DEFAULT_MARKETS)
    acct = ex.create_account("t", {"USDT": Decimal(1_000_000), "BTC": Decimal(10)})
    key, _ = ex.create_key(acct.id)
    return ex, acct.id, key


def _limit(side: str, qty: str, price: Decimal, **kw: object) -> OrderRequest:
    return OrderRequest("BTCUSDT", side, "LIMIT", "GTC", Decimal(qty), None, price, **kw)  # type: ignore[arg-type]


def test_candle_path_goes_low_first_on_up_candles_and_high_first_on_down_candles() -> None:
    up = Bar(Decimal(10), Decimal(15), Decimal(8), Decimal(12), Decimal(1))
    down = Bar(Decimal(10), Decimal(15), Decimal(8), Decimal(9), Decimal(1))
    replay = Replay(BTC, 0, (up, down))
    assert [p for _, p in replay.points(0)] == [Decimal(10), Decimal(8), Decimal(15), Decimal(12)]
    assert [p for _, p in replay.points(1)] == [Decimal(10), Decimal(15), Decimal(8), Decimal(9)]
    assert [t for t, _ in replay.points(1)] == [60000, 75000, 90000, 105000]
    assert replay.price_at(74999 + 15000) == Decimal(15) and replay.price_at(165_000) == Decimal(12)  # loops


def test_klines_only_show_the_path_reached_so_far() -> None:
    replay = Replay(BTC, START, BARS)
    first = BARS[0]
    partial = replay.kline(0, START + 20_000)  # open and first extreme reached
    expected_second = first.low if first.close >= first.open else first.high
    assert partial.close == expected_second and partial.open == first.open
    five = replay.klines(300_000, START + 600_000, 10)
    assert len(five) == 3 and five[0].high == max(b.high for b in BARS[:5])


def test_a_resting_buy_fills_only_when_the_path_trades_below_it() -> None:
    ex, _acct, key = _exchange()
    horizon = 600
    floor = min(b.low for b in BARS[:horizon])
    assert floor < ex.book("BTCUSDT")[0]  # the window dips below the opening bid
    touching = ex.place(key, _limit("BUY", "0.1", floor))
    through = ex.place(key, _limit("BUY", "0.1", floor + BTC.tick))
    ex.clock.advance(horizon * 60)
    ex.sync()
    assert touching.status == "NEW"  # the path touched its price but never traded below it
    assert through.status == "FILLED" and through.trades[0].price == floor + BTC.tick
    assert through.trades[0].is_maker
    first_below = next(i for i, b in enumerate(BARS) if b.low < floor + BTC.tick)
    assert START + first_below * 60_000 < through.trades[0].time_ms <= START + (first_below + 1) * 60_000


def test_price_time_priority_fills_best_price_then_earliest() -> None:
    ex, _acct, key = _exchange()
    ex.faults.add("partial_fill", value="0.5")  # makes the fill order visible as trade ids
    price = ex.price("BTCUSDT")
    far = ex.place(key, _limit("BUY", "0.1", price - 200))
    near_late = ex.place(key, _limit("BUY", "0.1", price - 100))
    ex.clock.advance(7 * 24 * 3600)
    ex.sync()
    first_trades = sorted((o.trades[0].id, o.id) for o in (far, near_late) if o.trades)
    assert first_trades[0][1] == near_late.id


def test_stop_loss_limit_triggers_and_takes_at_the_stop() -> None:
    ex, acct, key = _exchange()
    price = ex.price("BTCUSDT")
    floor = min(b.low for b in BARS[:600])
    stop = (price + floor) / 2
    stop = stop.quantize(BTC.tick)
    order = ex.place(key, OrderRequest("BTCUSDT", "SELL", "STOP_LOSS_LIMIT", "GTC", Decimal("0.5"), None,
                                       stop - 10, stop))
    assert not order.working and ex.accounts[acct].balances["BTC"].locked == Decimal("0.5")
    rest = ex.place(key, OrderRequest("BTCUSDT", "SELL", "STOP_LOSS_LIMIT", "GTC", Decimal("0.5"), None,
                                      stop + 10, stop))  # limit above the stop: rests once triggered
    ex.clock.advance(600 * 60)
    ex.sync()
    assert order.working and order.status == "FILLED"
    assert order.trades[0].price == stop and not order.trades[0].is_maker  # took at the stop, not at its limit
    # its limit is above the stop: it rests once triggered and fills as maker when the path later trades above it
    assert rest.status == "FILLED" and rest.trades[0].price == stop + 10 and rest.trades[0].is_maker
    first_through = next(i for i, b in enumerate(BARS) if b.low <= stop)
    assert START + first_through * 60_000 < order.trades[0].time_ms <= START + (first_through + 1) * 60_000


def test_fees_are_charged_in_the_asset_received_and_balances_add_up_exactly() -> None:
    ex, acct, key = _exchange()
    bid, ask = ex.book("BTCUSDT")
    buy = ex.place(key, OrderRequest("BTCUSDT", "BUY", "MARKET", qty=Decimal("0.12345")))
    sell = ex.place(key, OrderRequest("BTCUSDT", "SELL", "MARKET", qty=Decimal("0.1")))
    buy_fee = (Decimal("0.12345") * Decimal("0.001")).quantize(EIGHT, rounding=ROUND_UP)
    sell_quote = bid * Decimal("0.1")
    sell_fee = (sell_quote * Decimal("0.001")).quantize(EIGHT, rounding=ROUND_UP)
    assert buy.trades[0].commission == buy_fee and buy.trades[0].commission_asset == "BTC"
    assert sell.trades[0].commission == sell_fee and sell.trades[0].commission_asset == "USDT"
    bal = ex.accounts[acct].balances
    assert bal["BTC"].free == Decimal(10) + Decimal("0.12345") - buy_fee - Decimal("0.1")
    assert bal["USDT"].free == Decimal(1_000_000) - ask * Decimal("0.12345") + sell_quote - sell_fee


def test_a_crossing_limit_fills_as_taker_at_the_better_price_and_refunds_the_difference() -> None:
    ex, acct, key = _exchange()
    _bid, ask = ex.book("BTCUSDT")
    order = ex.place(key, _limit("BUY", "1", ask + 500))
    assert order.status == "FILLED" and order.trades[0].price == ask and not order.trades[0].is_maker
    usdt = ex.accounts[acct].balances["USDT"]
    assert usdt.locked == 0 and usdt.free == Decimal(1_000_000) - ask


def test_refusals() -> None:
    ex, acct, key = _exchange()
    price = ex.price("BTCUSDT")
    cases = [
        (_limit("BUY", "0.1", price - Decimal("0.005")), Reason.FILTER),
        (_limit("BUY", "0.000015", price - 100), Reason.FILTER),
        (_limit("BUY", "0.00001", Decimal(100)), Reason.FILTER),  # notional 0.001 < 5
        (_limit("BUY", "100", price - 100), Reason.INSUFFICIENT_BALANCE),
        (OrderRequest("BTCUSDT", "BUY", "LIMIT_MAKER", "GTC", Decimal(1), None, price + 100), Reason.WOULD_TAKE),
        (OrderRequest("NOPE", "BUY", "MARKET", qty=Decimal(1)), Reason.UNKNOWN_SYMBOL),
    ]
    for request, reason in cases:
        with pytest.raises(SimexError) as err:
            ex.place(key, request)
        assert err.value.reason is reason
    assert ex.all_orders(acct) == []
    with pytest.raises(SimexError):
        ex.cancel(acct, "BTCUSDT", order_id=12345)


def test_the_clock_never_goes_back() -> None:
    clock = MarketClock(START, 0)
    clock.advance(10)
    with pytest.raises(ClockError):
        clock.set(START)
    fake_wall = [100.0]
    fast = MarketClock(START, 60, wall=lambda: fake_wall[0])
    fake_wall[0] += 2
    assert fast.now_ms() == START + 120_000


order_steps = st.lists(
    st.tuples(st.sampled_from(["BUY", "SELL"]), st.sampled_from(["LIMIT", "MARKET", "CANCEL", "WAIT"]),
              st.integers(1, 5000), st.integers(-300, 300)),
    min_size=1, max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=order_steps)
def test_every_unit_of_every_asset_is_accounted_for(steps: list[tuple[str, str, int, int]]) -> None:
    """Balances == initial + fills - fees, and locked == what open orders reserve."""
    ex, acct, key = _exchange()
    for side, kind, size, offset in steps:
        qty = Decimal(size) * Decimal("0.0001")
        try:
            if kind == "MARKET":
                ex.place(key, OrderRequest("BTCUSDT", side, "MARKET", qty=qty))
            elif kind == "LIMIT":
                ex.place(key, _limit(side, str(qty), ex.price("BTCUSDT") + offset))
            elif kind == "CANCEL":
                open_orders = ex.open_orders(acct, "BTCUSDT")
                if open_orders:
                    ex.cancel(acct, "BTCUSDT", order_id=open_orders[0].id)
            else:
                ex.clock.advance(size)
                ex.sync()
        except SimexError as err:
            assert err.reason in (Reason.INSUFFICIENT_BALANCE, Reason.FILTER)
    base, quote = Decimal(10), Decimal(1_000_000)
    for trade in ex.my_trades(acct):
        if trade.side == "BUY":
            base += trade.qty - trade.commission
            quote -= trade.quote_qty
        else:
            base -= trade.qty
            quote += trade.quote_qty - trade.commission
    bal = ex.accounts[acct].balances
    assert bal["BTC"].free + bal["BTC"].locked == base
    assert bal["USDT"].free + bal["USDT"].locked == quote
    open_orders = ex.open_orders(acct)
    assert bal["USDT"].locked == sum(((o.price or 0) * o.remaining for o in open_orders if o.side == "BUY"),
                                     Decimal(0))
    assert bal["BTC"].locked == sum((o.remaining for o in open_orders if o.side == "SELL"), Decimal(0))
    assert min(b.free for b in bal.values()) >= 0
