"""Fills come back in the order the exchange made them. Trades with the same timestamp are
ordered by trade id as a number: as text, trade "10" would sort before trade "9", and a
bot would hear of two fills of one moment the wrong way round."""

from __future__ import annotations

from .conftest import FakeSigner
from .test_venues_orders import PAIR, _binance_order, _trade, _venue


async def test_trades_of_one_moment_keep_the_exchanges_order_across_a_digit(signer: FakeSigner) -> None:
    trades = [_trade(n, 28, "0.10000000", "0.05000000", True) for n in (8, 9, 10, 11)]
    for trade in trades:
        trade["time"] = 1499865549590  # one moment: only the id orders them
    routes = {"/api/v3/myTrades": trades, "orderId=28": _binance_order(28, "sbB1-7-base", "FILLED", "0.4")}
    venue, _ = await _venue(signer, routes)
    try:
        fills = await venue.fetch_my_trades(PAIR)
    finally:
        await venue.close()
    assert [f.trade_id for f in fills] == ["8", "9", "10", "11"]
