"""Orders and fills read back from the exchange: ours parsed back, foreign ones kept and marked."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sealbot.domain import ClientOrderId, InvalidConfig, OrderStatus, OrderType, Pair, Side
from sealbot.venues.base import ForeignClientId, is_foreign
from sealbot.venues.ccxt_venue import CcxtVenue
from sealbot.venues.urls import apply_url_overrides

from .conftest import FakeHandle, FakeHttp, FakeSigner, FakeSignRequest
from .test_venues_markets import BINANCE_ETHBTC

PAIR = Pair("ETH", "BTC")


def _binance_order(order_id: int, client: str, status: str = "NEW", executed: str = "0.00000000") -> dict[str, object]:
    return {"symbol": "ETHBTC", "orderId": order_id, "orderListId": -1, "clientOrderId": client,
            "price": "0.05000000", "origQty": "1.00000000", "executedQty": executed,
            "cummulativeQuoteQty": "0.00000000", "status": status, "timeInForce": "GTC", "type": "LIMIT",
            "side": "BUY", "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": 1499827319559,
            "updateTime": 1499827319559, "isWorking": True, "origQuoteOrderQty": "0.000000"}


def _trade(trade_id: int, order_id: int, qty: str, price: str, maker: bool) -> dict[str, object]:
    return {"symbol": "ETHBTC", "id": trade_id, "orderId": order_id, "orderListId": -1, "price": price,
            "qty": qty, "quoteQty": "0.0", "commission": "0.00010000", "commissionAsset": "ETH",
            "time": 1499865549590 + trade_id, "isBuyer": True, "isMaker": maker, "isBestMatch": True}


async def _venue(signer: FakeSigner, routes: dict[str, object]) -> tuple[CcxtVenue, FakeHttp]:
    venue = CcxtVenue("binance", signer=signer, handle=FakeHandle("a"), request_type=FakeSignRequest,
                      urls={"api_base": "http://127.0.0.1:9"})
    http = FakeHttp({"/exchangeInfo": {"symbols": [BINANCE_ETHBTC]}, **routes})
    venue.exchange.fetch = http
    await venue.load_markets()
    return venue, http


async def test_my_trades_parse_our_client_ids_and_keep_foreign_ones(signer: FakeSigner) -> None:
    # myTrades names order ids only; the venue reads each unknown order once to learn its client id
    trades = [_trade(1, 28, "0.40000000", "0.05000000", True), _trade(2, 99, "1.00000000", "0.05100000", False),
              _trade(3, 28, "0.60000000", "0.05000000", True)]
    routes = {"/api/v3/myTrades": trades, "orderId=28": _binance_order(28, "sbB1-7-base", "FILLED", "1.0"),
              "orderId=99": _binance_order(99, "web_5f2a9c", "FILLED", "1.0")}
    venue, http = await _venue(signer, routes)
    try:
        fills = await venue.fetch_my_trades(PAIR)
    finally:
        await venue.close()
    assert [f.trade_id for f in fills] == ["1", "2", "3"]
    ours = ClientOrderId("B1", 7, "base")
    assert fills[0].client_id == ours and fills[2].client_id == ours
    assert is_foreign(fills[1].client_id) and fills[1].client_id == ForeignClientId.of("web_5f2a9c")
    assert (fills[0].amount, fills[0].price, fills[0].fee, fills[0].fee_currency) == (
        Decimal("0.4"), Decimal("0.05"), Decimal("0.0001"), "ETH")
    assert fills[0].is_maker and not fills[1].is_maker
    assert sum(1 for _, url, _, _ in http.calls if "orderId=28" in url) == 1  # looked up once, then cached


async def test_open_orders_mark_foreign_ones(signer: FakeSigner) -> None:
    routes = {"/api/v3/openOrders": [_binance_order(28, "sbB1-7-so1", "PARTIALLY_FILLED", "0.25"),
                                     _binance_order(31, "and_7c1f0d")]}
    venue, _ = await _venue(signer, routes)
    try:
        ours, foreign = await venue.fetch_open_orders(PAIR)
    finally:
        await venue.close()
    assert ours.client_id == ClientOrderId("B1", 7, "so1") and ours.status is OrderStatus.PARTIALLY_FILLED
    assert (ours.amount, ours.filled, ours.price, ours.type) == (
        Decimal("1"), Decimal("0.25"), Decimal("0.05"), OrderType.LIMIT)
    assert is_foreign(foreign.client_id) and str(foreign.client_id) == "foreign:and_7c1f0d"
    assert foreign.side is Side.BUY and foreign.exchange_id == "31"


async def test_fetch_order_asks_by_client_id(signer: FakeSigner) -> None:
    venue, http = await _venue(signer, {"/api/v3/order": _binance_order(28, "sbB1-7-so1", "CANCELED")})
    try:
        order = await venue.fetch_order(ClientOrderId("B1", 7, "so1"), PAIR)
    finally:
        await venue.close()
    assert order.status is OrderStatus.CANCELED
    assert "origClientOrderId=sbB1-7-so1" in http.calls[-1][1]


class _Stub:
    def __init__(self, api: object) -> None:
        self.urls = {"api": api}


def test_url_overrides_keep_each_group_path() -> None:
    binance = _Stub({"public": "https://api.binance.com/api/v3", "sapi": "https://api.binance.com/sapi/v1"})
    apply_url_overrides(binance, {"api_base": "http://127.0.0.1:8001"})
    assert binance.urls["api"] == {"public": "http://127.0.0.1:8001/api/v3", "sapi": "http://127.0.0.1:8001/sapi/v1"}
    bybit = _Stub({"spot": "https://api.{hostname}", "private": "https://api.{hostname}"})
    apply_url_overrides(bybit, {"api_base": "http://10.0.0.2:9000", "api": {"private": "http://10.0.0.3/x"}})
    assert bybit.urls["api"] == {"spot": "http://10.0.0.2:9000", "private": "http://10.0.0.3/x"}


def test_url_overrides_name_what_is_wrong() -> None:
    with pytest.raises(InvalidConfig, match=r"urls\.api_base"):
        apply_url_overrides(_Stub({}), {"api_base": "127.0.0.1:8001"})
    with pytest.raises(InvalidConfig, match=r"urls\.base"):
        apply_url_overrides(_Stub({}), {"base": "http://x"})


async def test_fills_are_asked_for_in_the_largest_page(signer: FakeSigner) -> None:
    """Binance answers at most 1,000 trades a request (500 unless asked): smaller pages
    would cost more requests for the same fills. Without a start time the venue asks for
    the newest page only (paging since a time: tests/engine/test_engine_fill_paging.py)."""
    trades = [_trade(i, 28, "0.00100000", "0.05000000", True) for i in range(1, 1001)]
    routes = {"/api/v3/myTrades": trades, "orderId=28": _binance_order(28, "sbB1-7-base", "FILLED", "1.0")}
    venue, http = await _venue(signer, routes)
    try:
        fills = await venue.fetch_my_trades(PAIR)
    finally:
        await venue.close()
    assert len(fills) == 1000
    (asked,) = [url for _, url, _, _ in http.calls if "/api/v3/myTrades" in url]
    assert "limit=1000" in asked and "startTime" not in asked and "fromId" not in asked
