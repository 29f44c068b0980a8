"""A stop-limit order triggered on a move exists as a limit order only from its stop price
on: it can fill on the rest of that move, never at a price the move traded before it was
triggered. (simex once filled it anywhere on the triggering move: a sell stop-loss with
its limit above the stop "filled" on a fall, at a price passed before the fall reached
the stop.) Replay of the bundled BTC file from its first row: 46319 (0 s) -> 46319
(15 s) -> 46385 (30 s) -> 46377 (45 s)."""

from __future__ import annotations

from decimal import Decimal

from sealbot.simex.clock import MarketClock
from sealbot.simex.core import Exchange, OrderRequest
from sealbot.simex.markets import DEFAULT_MARKETS

START = 1_700_000_040_000


def _at(seconds: int) -> Exchange:
    ex = Exchange(MarketClock(START, 0), DEFAULT_MARKETS)
    ex.clock.set(START + seconds * 1000)
    ex.sync()
    return ex


def _stop(ex: Exchange, side: str, kind: str, limit: str, stop: str) -> OrderRequest:
    return OrderRequest("BTCUSDT", side, kind, "GTC", Decimal("0.001"), None, Decimal(limit), Decimal(stop))


def _key(ex: Exchange):  # type: ignore[no-untyped-def]
    acct = ex.create_account("t", {"USDT": Decimal(100_000), "BTC": Decimal(1)})
    return ex.create_key(acct.id)[0]


def test_simex_sell_stop_loss_triggered_on_a_fall_does_not_fill_above_its_stop_on_that_fall() -> None:
    ex = _at(30)
    assert ex.price("BTCUSDT") == Decimal("46385")
    order = ex.place(_key(ex), _stop(ex, "SELL", "STOP_LOSS_LIMIT", "46383", "46380"))
    ex.clock.set(START + 45_000)  # falls 46385 -> 46377: through 46383, then to the stop 46380
    ex.sync()
    assert order.working and order.status == "NEW" and not order.trades
    ex.clock.advance(3 * 3600)  # later the price trades above 46383 again: then it fills, as maker
    ex.sync()
    assert order.status == "FILLED" and order.trades[0].price == Decimal("46383") and order.trades[0].is_maker
    assert order.trades[0].time_ms > START + 45_000


def test_simex_buy_stop_loss_triggered_on_a_rise_does_not_fill_below_its_stop_on_that_rise() -> None:
    ex = _at(15)
    order = ex.place(_key(ex), _stop(ex, "BUY", "STOP_LOSS_LIMIT", "46340", "46350"))
    ex.clock.set(START + 30_000)  # rises 46319 -> 46385: through 46340, then to the stop 46350
    ex.sync()
    assert order.working and order.status == "NEW" and not order.trades


def test_simex_take_profit_triggered_on_a_rise_fills_where_the_rest_of_the_rise_trades_through_it() -> None:
    ex = _at(15)
    order = ex.place(_key(ex), _stop(ex, "SELL", "TAKE_PROFIT_LIMIT", "46360", "46330"))
    ex.clock.set(START + 30_000)  # rises 46319 -> 46385: the stop 46330, then on through 46360
    ex.sync()
    assert order.status == "FILLED" and order.trades[0].price == Decimal("46360") and order.trades[0].is_maker
    assert order.trades[0].time_ms == START + 30_000
