"""simex's KuCoin websocket: connect tokens, the wire as KuCoin documents it, its limits,
and the unmodified ccxt.pro KuCoin client reading candles and order changes from it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ccxt.pro as ccxt_pro
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from sealbot.simex import SimexServer
from sealbot.simex.core import OrderRequest
from sealbot.simex.ws_kucoin import KucoinStreams

from .ccxt_simex import point_at_simex

START = 1_700_000_040_000  # a minute boundary
PASSPHRASE = "correct horse"


@pytest.fixture
def sx() -> Iterator[SimexServer]:
    with SimexServer(speed=0, start_ms=START, ws_push_interval=0.02, kucoin_ws_max_messages=6,
                     kucoin_ws_message_window=1.0, kucoin_ws_max_topics=3, kucoin_ws_max_batch=2,
                     kucoin_ws_max_connections=2) as server:
        yield server


def streams(sx: SimexServer) -> KucoinStreams:
    assert sx.kucoin_ws is not None
    return sx.kucoin_ws


def bullet(sx: SimexServer, key: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST a bullet (signed as KuCoin's key version 2 when ``key``); returns ``data``."""
    path = "/api/v1/bullet-private" if key else "/api/v1/bullet-public"
    headers = {"Content-Type": "application/json"}
    if key:
        stamp = str(int(time.time() * 1000))

        def b64(payload: bytes) -> str:
            return base64.b64encode(hmac.new(key["secret"].encode(), payload, hashlib.sha256).digest()).decode()

        headers |= {"KC-API-KEY": key["key"], "KC-API-TIMESTAMP": stamp, "KC-API-KEY-VERSION": "2",
                    "KC-API-PASSPHRASE": b64(PASSPHRASE.encode()),
                    "KC-API-SIGN": b64(f"{stamp}POST{path}{{}}".encode())}
    answer = httpx.post(sx.base_url + path, content=b"{}", headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["code"] == "200000"
    return body["data"]  # type: ignore[no-any-return]


def url(data: dict[str, Any], connect_id: str = "c1") -> str:
    return f"{data['instanceServers'][0]['endpoint']}?token={data['token']}&connectId={connect_id}"


async def next_json(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


async def reply(ws: ClientConnection) -> Any:
    """The next message that is not a pushed candle (they keep coming every push)."""
    while True:
        message = await next_json(ws)
        if message.get("subject") != "trade.candles.update":
            return message


def test_bullets_answer_as_kucoin_documents(sx: SimexServer) -> None:
    data = bullet(sx)
    assert set(data) == {"token", "instanceServers"} and len(data["token"]) >= 32
    [server] = data["instanceServers"]
    assert server == {"endpoint": sx.base_url.replace("http://", "ws://") + "/endpoint", "encrypt": False,
                      "protocol": "websocket", "pingInterval": 18000, "pingTimeout": 10000}
    unsigned = httpx.post(sx.base_url + "/api/v1/bullet-private", content=b"{}")
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "400001"


async def test_a_private_token_subscribes_its_accounts_orders(sx: SimexServer) -> None:
    account = sx.admin.create_account("kc", {"USDT": "100"})
    data = bullet(sx, sx.admin.create_key(account["id"], passphrase=PASSPHRASE))
    async with connect(url(data)) as ws:
        await next_json(ws)
        await ws.send(json.dumps({"id": "o", "type": "subscribe", "topic": "/spotMarket/tradeOrders",
                                  "privateChannel": True, "response": True}))
        assert await next_json(ws) == {"id": "o", "type": "ack"}
        assert streams(sx).private_subscriptions() == 1


async def test_welcome_ping_subscribe_ack_and_candles_in_order(sx: SimexServer) -> None:
    async with connect(url(bullet(sx), "hello")) as ws:
        assert await next_json(ws) == {"id": "hello", "type": "welcome"}
        await ws.send(json.dumps({"id": "p1", "type": "ping"}))
        pong = await next_json(ws)
        assert pong["id"] == "p1" and pong["type"] == "pong"
        topic = "/market/candles:BTC-USDT_1min"
        await ws.send(json.dumps({"id": "s1", "type": "subscribe", "topic": topic, "privateChannel": False,
                                  "response": True}))
        assert await next_json(ws) == {"id": "s1", "type": "ack"}
        forming = await next_json(ws)
        assert forming["type"] == "message" and forming["topic"] == topic
        assert forming["subject"] == "trade.candles.update" and forming["data"]["symbol"] == "BTC-USDT"
        assert forming["data"]["candles"][0] == str(START // 1000) and len(forming["data"]["candles"]) == 7
        sx.admin.set_clock(advance_seconds=150)  # candles START and START+60 s close; the third forms
        starts: list[int] = []
        while not starts or starts[-1] < (START + 120_000) // 1000:
            starts.append(int((await next_json(ws))["data"]["candles"][0]))
        assert starts[-3:] == [START // 1000, START // 1000 + 60, START // 1000 + 120]  # in order, none skipped
        rest = sx.exchange.replays["BTCUSDT"].klines(60_000, START + 150_000, 3)  # type: ignore[union-attr]
        await ws.send(json.dumps({"id": "u1", "type": "unsubscribe", "topic": topic, "response": True}))
        assert await reply(ws) == {"id": "u1", "type": "ack"}
        assert rest[0].open_ms == START


async def test_errors_are_sent_as_kucoin_sends_them(sx: SimexServer) -> None:
    async with connect(url(bullet(sx))) as ws:
        await next_json(ws)  # welcome
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "topic": "/market/level2:BTC-USDT",
                                  "response": True}))
        assert await next_json(ws) == {"id": "1", "type": "error", "code": 404,
                                       "data": "topic /market/level2:BTC-USDT is not found (simex serves "
                                               "/market/candles:<symbol>_<type> and /spotMarket/tradeOrders)"}
        await ws.send(json.dumps({"id": "2", "type": "subscribe", "topic": "/spotMarket/tradeOrders",
                                  "privateChannel": True, "response": True}))
        error = await next_json(ws)
        assert (error["id"], error["type"], error["code"]) == ("2", "error", 401)  # a public token
        await ws.send(json.dumps({"id": "3", "type": "hello"}))
        assert await next_json(ws) == {"id": "3", "type": "error", "code": 415, "data": "type is not supported"}


async def test_limits_topics_batch_and_message_rate(sx: SimexServer) -> None:
    async with connect(url(bullet(sx))) as ws:
        await next_json(ws)
        await ws.send(json.dumps({"id": "b", "type": "subscribe", "response": True,
                                  "topic": "/market/candles:BTC-USDT_1min,ETH-BTC_1min,XRP-ETH_1min"}))
        error = await reply(ws)
        assert (error["type"], error["code"]) == ("error", 509) and "2 per time" in error["data"]
        for n, name in enumerate(["BTC-USDT_1min", "ETH-BTC_1min", "XRP-ETH_1min"]):
            await ws.send(json.dumps({"id": f"s{n}", "type": "subscribe", "topic": f"/market/candles:{name}",
                                      "response": True}))
            assert await reply(ws) == {"id": f"s{n}", "type": "ack"}
        await ws.send(json.dumps({"id": "s4", "type": "subscribe", "topic": "/market/candles:BTC-USDT_5min",
                                  "response": True}))
        error = await reply(ws)
        assert error["code"] == 509 and "3 per connection" in error["data"]
        assert streams(sx).topic_counts() == [3]
        for n in range(2):  # 5 messages so far in the window: the 6th is answered, the 7th refused
            await ws.send(json.dumps({"id": f"p{n}", "type": "ping"}))
        assert (await reply(ws))["type"] == "pong"
        assert (await reply(ws))["code"] == 509 and streams(sx).flooded == 1


async def test_connections_per_user_and_bad_or_expired_tokens(sx: SimexServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url({"token": "forged", "instanceServers": bullet(sx)["instanceServers"]})):
            pass
    assert refused.value.response.status_code == 401
    data = bullet(sx)
    async with connect(url(data, "a")) as first, connect(url(data, "b")) as second:
        await next_json(first), await next_json(second)
        with pytest.raises(InvalidStatus) as crowded:  # a third from the same user (IP, public token)
            async with connect(url(data, "c")):
                pass
        assert crowded.value.response.status_code == 429
    for _ in range(100):  # the server sees the two go
        if not streams(sx).connections:
            break
        await asyncio.sleep(0.02)
    streams(sx).expire_tokens()
    async with connect(url(data, "d")) as ws:
        assert await next_json(ws) == {"id": "d", "type": "error", "code": 401, "data": "token is expired"}
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)


async def test_a_silent_client_is_dropped_after_the_ping_timeout() -> None:
    with SimexServer(speed=0, start_ms=START, kucoin_ws_ping_interval=0.2, kucoin_ws_ping_timeout=0.2) as sx:
        async with connect(url(bullet(sx))) as ws:
            await next_json(ws)
            start = time.monotonic()
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            assert 0.3 < time.monotonic() - start < 3


async def test_ccxt_pro_watches_candles_and_the_accounts_order_changes(sx: SimexServer) -> None:
    account = sx.admin.create_account("kc", {"USDT": "20000"})
    key = sx.admin.create_key(account["id"], passphrase=PASSPHRASE)
    pro = point_at_simex(ccxt_pro.kucoin({"apiKey": key["key"], "secret": key["secret"], "password": PASSPHRASE,
                                          "options": {"fetchMarkets": {"types": ["spot"]}}}),
                         sx.base_url, sandbox=False)
    try:
        await pro.load_markets()
        rows = await asyncio.wait_for(pro.watch_ohlcv("BTC/USDT", "1m"), 10)
        assert rows[-1][0] == START
        orders = asyncio.ensure_future(pro.watch_orders())
        await asyncio.sleep(0.5)  # subscribed (ccxt resolves a watch on data, not on the ack)
        ex = sx.exchange
        assert ex is not None
        price = (ex.price("BTCUSDT") / 2).quantize(ex.markets["BTCUSDT"].tick)
        placed = ex.place(ex.keys[key["key"]], OrderRequest("BTCUSDT", "BUY", "LIMIT", "GTC", Decimal("0.001"),
                                                            None, price, None, "kc-1"))
        [order] = await asyncio.wait_for(orders, 10)
        assert (order["id"], order["clientOrderId"], order["status"]) == (str(placed.id), "kc-1", "open")
        assert streams(sx).private_subscriptions() == 1
        ex.cancel(account["id"], "BTCUSDT", order_id=placed.id)
        orders_now = await asyncio.wait_for(pro.watch_orders(), 10)
        assert orders_now[-1]["status"] == "canceled"
    finally:
        await pro.close()


async def test_ccxt_pro_keeps_the_connection_alive_with_the_ping_interval_it_was_told() -> None:
    """The bullet answer's pingInterval is what ccxt.pro pings at; simex closes a client
    silent for pingInterval + pingTimeout, so a connection that outlives several of those
    is one whose JSON pings arrive."""
    with SimexServer(speed=0, start_ms=START, ws_push_interval=5.0, kucoin_ws_ping_interval=0.3,
                     kucoin_ws_ping_timeout=0.3) as sx:
        pro = point_at_simex(ccxt_pro.kucoin({"options": {"fetchMarkets": {"types": ["spot"]}}}), sx.base_url,
                             sandbox=False)
        try:
            await pro.load_markets()
            await asyncio.wait_for(pro.watch_ohlcv("BTC/USDT", "1m"), 10)
            await asyncio.sleep(2.0)  # > 3 x (0.3 + 0.3) s with no candle pushed (5 s push interval)
            assert (streams(sx).connections, streams(sx).accepted) == (1, 1)
        finally:
            await pro.close()
