"""simex's Binance WebSocket API user-data stream: the subscription signed as Binance
checks it, executionReport events as the matching engine changes the account's orders,
and the unmodified ccxt.pro client watching them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ccxt
import ccxt.pro as ccxt_pro
import pytest
from websockets.asyncio.client import ClientConnection, connect

from sealbot.simex import SimexServer
from sealbot.simex.core import OrderRequest
from sealbot.simex.ws_api_binance import BinanceWsApi
from sealbot.venues.urls import apply_url_overrides

REPORT_FIELDS = {"e", "E", "s", "c", "S", "o", "f", "q", "p", "P", "F", "g", "C", "x", "X", "r", "i", "l", "z",
                 "L", "n", "N", "T", "t", "I", "w", "m", "M", "O", "Z", "Y", "Q", "W", "V"}


@pytest.fixture
def sx() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as server:
        yield server


def ws_api(sx: SimexServer) -> BinanceWsApi:
    assert sx.ws_api is not None
    return sx.ws_api


def signed(key: str, secret: str, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"apiKey": key, "timestamp": int(time.time() * 1000), **extra}
    query = "&".join(f"{k}={params[k]}" for k in sorted(params))
    params["signature"] = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return params


async def call(ws: ClientConnection, rid: Any, method: str, params: dict[str, Any] | None = None) -> Any:
    request: dict[str, Any] = {"id": rid, "method": method}
    if params is not None:
        request["params"] = params
    await ws.send(json.dumps(request))
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if "event" not in message:
            return message


async def next_event(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


def account_with_key(sx: SimexServer) -> tuple[dict[str, Any], dict[str, Any]]:
    account = sx.admin.create_account("alice", {"USDT": "10000"})
    return account, sx.admin.create_key(account["id"])


async def test_a_signed_subscription_streams_every_change_of_the_accounts_orders(sx: SimexServer) -> None:
    account, key = account_with_key(sx)
    other, other_key = account_with_key(sx)
    ex = sx.exchange
    assert ex is not None
    async with connect(sx.base_url.replace("http://", "ws://") + "/ws-api/v3") as ws:
        answer = await call(ws, "sub-1", "userDataStream.subscribe.signature",
                            signed(key["key"], key["secret"], recvWindow=5000))
        assert answer == {"id": "sub-1", "status": 200, "result": {"subscriptionId": 0}}
        assert await call(ws, 7, "session.subscriptions") == {"id": 7, "status": 200,
                                                                "result": [{"subscriptionId": 0}]}
        ex.sync()
        price = ex.price("BTCUSDT")
        # the other account's order is not this subscription's business
        ex.place(ex.keys[other_key["key"]], OrderRequest("BTCUSDT", "BUY", "MARKET", qty=Decimal("0.001"),
                                                          client_id="theirs"))
        resting = ex.place(ex.keys[key["key"]], OrderRequest("BTCUSDT", "BUY", "LIMIT", "GTC", Decimal("0.002"),
                                                              price=(price / 2).quantize(Decimal("0.01")),
                                                              client_id="mine-1"))
        new = await next_event(ws)
        assert new["subscriptionId"] == 0 and set(new["event"]) == REPORT_FIELDS
        event = new["event"]
        assert (event["e"], event["x"], event["X"], event["c"], event["i"]) == ("executionReport", "NEW", "NEW",
                                                                                "mine-1", resting.id)
        assert (event["q"], event["z"], event["t"], event["w"]) == ("0.00200000", "0.00000000", -1, True)
        # a partial fill, then the rest, as the matching engine makes them
        with ex.lock:
            ex._fill(resting, Decimal("0.001"), resting.price or Decimal(0), True, ex.synced_ms)
            ex._fill(resting, Decimal("0.001"), resting.price or Decimal(0), True, ex.synced_ms)
        part, full = (await next_event(ws))["event"], (await next_event(ws))["event"]
        assert (part["x"], part["X"], part["l"], part["z"], part["m"]) == ("TRADE", "PARTIALLY_FILLED",
                                                                           "0.00100000", "0.00100000", True)
        assert (full["x"], full["X"], full["z"], full["w"]) == ("TRADE", "FILLED", "0.00200000", False)
        assert part["t"] != full["t"] and part["t"] > 0 and part["N"] == "BTC" and Decimal(part["n"]) > 0
        # a cancel names the cancelled order's client id in C
        other_order = ex.place(ex.keys[key["key"]], OrderRequest("BTCUSDT", "BUY", "LIMIT", "GTC",
                                                                  Decimal("0.001"), price=resting.price,
                                                                  client_id="mine-2"))
        assert (await next_event(ws))["event"]["x"] == "NEW"
        ex.cancel(account["id"], "BTCUSDT", other_order.id)
        cancel = (await next_event(ws))["event"]
        assert (cancel["x"], cancel["X"], cancel["C"]) == ("CANCELED", "CANCELED", "mine-2")
        assert await call(ws, "u", "userDataStream.unsubscribe", {"subscriptionId": 0}) == {
            "id": "u", "status": 200, "result": {}}
        ex.place(ex.keys[key["key"]], OrderRequest("BTCUSDT", "BUY", "MARKET", qty=Decimal("0.001")))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.3)
    del other


@pytest.mark.parametrize(("case", "code", "status"), [
    ("bad signature", -1022, 400), ("unknown key", -2015, 401), ("expired", -1021, 400),
    ("no signature", -1102, 400), ("disabled key", -2015, 401),
])
async def test_a_subscription_binance_would_refuse_is_refused_with_its_error(
        sx: SimexServer, case: str, code: int, status: int) -> None:
    _, key = account_with_key(sx)
    params = signed(key["key"], key["secret"])
    if case == "bad signature":
        params = signed(key["key"], key["secret"] + "x")
    elif case == "unknown key":
        params = signed("0" * 64, key["secret"])
    elif case == "expired":
        params = signed(key["key"], key["secret"], timestamp=int(time.time() * 1000) - 6000)
    elif case == "no signature":
        params.pop("signature")
    elif case == "disabled key":
        sx.admin.update_key(key["key"], enabled=False)
    async with connect(sx.base_url.replace("http://", "ws://") + "/ws-api/v3") as ws:
        answer = await call(ws, 1, "userDataStream.subscribe.signature", params)
        assert answer["id"] == 1 and answer["status"] == status and answer["error"]["code"] == code
        assert "result" not in answer
        assert (await call(ws, 2, "order.place", {}))["error"]["code"] == -1000  # not served, said so
    assert ws_api(sx).subscriptions() == 0


async def test_ccxt_pro_watches_orders_on_simex_and_sees_a_drop(sx: SimexServer) -> None:
    _, key = account_with_key(sx)
    pro = ccxt_pro.binance({"apiKey": key["key"], "secret": key["secret"],
                            "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]},
                                        "fetchCurrencies": False, "fetchMargins": False}})
    apply_url_overrides(pro, {"api_base": sx.base_url})  # the ws URLs too: ws-api/v3 on simex
    try:
        await pro.load_markets()
        watching = asyncio.ensure_future(pro.watch_orders("BTC/USDT"))
        for _ in range(200):
            if ws_api(sx).subscriptions():
                break
            await asyncio.sleep(0.01)
        placed = await pro.create_order("BTC/USDT", "market", "buy", 0.001)
        orders = await asyncio.wait_for(watching, 5)
        assert orders[-1]["id"] == placed["id"] and orders[-1]["symbol"] == "BTC/USDT"
        dropped = asyncio.ensure_future(pro.watch_orders("BTC/USDT"))
        await asyncio.sleep(0.05)
        assert ws_api(sx).drop_all() == 1
        with pytest.raises(ccxt.NetworkError):  # as for a real drop
            await asyncio.wait_for(dropped, 5)
    finally:
        await pro.close()
