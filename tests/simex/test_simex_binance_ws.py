"""simex's Binance market-data websocket: the wire as Binance documents it, and the
unmodified ccxt.pro client reading klines from it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ccxt.pro as ccxt_pro
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from sealbot.simex import SimexServer
from sealbot.venues.urls import apply_url_overrides

START = 1_700_000_040_000  # a minute boundary
KLINE_FIELDS = {"t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"}


@pytest.fixture
def sx() -> Iterator[SimexServer]:
    with SimexServer(speed=0, start_ms=START, ws_push_interval=0.02) as server:
        yield server


def ws_url(sx: SimexServer, path: str) -> str:
    return sx.base_url.replace("http://", "ws://") + path


async def next_json(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


async def reply(ws: ClientConnection) -> Any:
    """The next message that is not a kline event (klines keep coming every push)."""
    while True:
        message = await next_json(ws)
        if message.get("data", message).get("e") != "kline":
            return message


async def klines_until(ws: ClientConnection, closed_open_ms: int) -> list[dict[str, Any]]:
    """Kline events up to and including the closed one of candle ``closed_open_ms``."""
    out: list[dict[str, Any]] = []
    while True:
        event = await next_json(ws)
        out.append(event)
        k = event.get("data", event)["k"]
        if k["x"] and k["t"] == closed_open_ms:
            return out


async def test_subscribe_is_acked_and_klines_arrive_in_binance_format(sx: SimexServer) -> None:
    async with connect(ws_url(sx, "/ws/0")) as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": 7}))
        assert await reply(ws) == {"result": None, "id": 7}
        forming = await next_json(ws)
        assert forming["e"] == "kline" and forming["s"] == "BTCUSDT" and set(forming["k"]) == KLINE_FIELDS
        k = forming["k"]
        assert (k["t"], k["T"], k["i"], k["x"]) == (START, START + 59_999, "1m", False)
        assert forming["E"] == START
        sx.admin.set_clock(advance_seconds=150)  # candles START and START+60 s close; the third forms
        events = await klines_until(ws, START + 60_000)
        closed = [e["k"] for e in events if e["k"]["x"]]
        assert [c["t"] for c in closed] == [START, START + 60_000]
        rest = sx.exchange.replays["BTCUSDT"].klines(60_000, START + 150_000, 3)
        for c, r in zip(closed, rest, strict=False):
            assert (Decimal(c["o"]), Decimal(c["h"]), Decimal(c["l"]), Decimal(c["c"]), Decimal(c["v"])) == (
                r.open, r.high, r.low, r.close, r.volume)
        forming = await next_json(ws)
        assert forming["k"]["t"] == START + 120_000 and forming["k"]["x"] is False
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 8}))
        assert await reply(ws) == {"result": ["btcusdt@kline_1m"], "id": 8}
        await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": 9}))
        assert await reply(ws) == {"result": None, "id": 9}
        await asyncio.sleep(0.1)  # pushes already on the wire drain
        while True:
            try:
                await asyncio.wait_for(ws.recv(), 0.1)
            except TimeoutError:
                break
        with pytest.raises(TimeoutError):  # nothing more once unsubscribed
            await asyncio.wait_for(ws.recv(), 0.3)


async def test_combined_streams_wrap_events_and_bad_requests_get_binance_errors(sx: SimexServer) -> None:
    async with connect(ws_url(sx, "/stream?streams=btcusdt@kline_1m/ethbtc@kline_5m")) as ws:
        first, second = await next_json(ws), await next_json(ws)
        assert {first["stream"], second["stream"]} == {"btcusdt@kline_1m", "ethbtc@kline_5m"}
        assert {first["data"]["k"]["i"], second["data"]["k"]["i"]} == {"1m", "5m"}
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": 1}))
        error = await reply(ws)
        assert error["code"] == 2 and error["id"] == 1 and "kline" in error["msg"]
        await ws.send("not json")
        assert (await reply(ws))["code"] == 3
        await ws.send(json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 2}))
        assert await reply(ws) == {"result": True, "id": 2}
        await ws.send(json.dumps({"method": "SET_PROPERTY", "params": ["combined", False], "id": 3}))
        assert await reply(ws) == {"result": None, "id": 3}
        event = await next_json(ws)
        assert "stream" not in event and event["e"] == "kline"  # raw from now on


async def test_ccxt_pro_watch_ohlcv_reads_simex_klines_and_drop_all_cuts_it(sx: SimexServer) -> None:
    exchange = ccxt_pro.binance({"options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
                                             "fetchMargins": False}})
    apply_url_overrides(exchange, {"api_base": sx.base_url})  # REST and ws both to simex
    try:
        rows = await asyncio.wait_for(exchange.watch_ohlcv("BTC/USDT", "1m"), 5)
        assert rows[-1][0] == START
        sx.admin.set_clock(advance_seconds=61)
        while rows[-1][0] != START + 60_000:
            rows = await asyncio.wait_for(exchange.watch_ohlcv("BTC/USDT", "1m"), 5)
        closed = sx.exchange.replays["BTCUSDT"].kline(0, START + 61_000)
        assert exchange.ohlcvs["BTC/USDT"]["1m"][-2][1:5] == [float(closed.open), float(closed.high),
                                                              float(closed.low), float(closed.close)]
        assert sx.streams is not None and sx.streams.connections == 1
        assert sx.streams.drop_all() == 1
        for _ in range(100):
            if sx.streams.connections == 0:
                break
            await asyncio.sleep(0.01)
        assert sx.streams.connections == 0
        rows = []
        for _ in range(3):  # the pending watch fails with the socket; ccxt then dials again
            try:
                rows = await asyncio.wait_for(exchange.watch_ohlcv("BTC/USDT", "1m"), 2)
                break
            except (ccxt_pro.NetworkError, TimeoutError):
                continue
        assert rows and rows[-1][0] == START + 60_000 and sx.streams.connections == 1
    finally:
        await exchange.close()


async def test_a_client_sending_more_than_the_message_rate_is_cut_with_1008() -> None:
    with SimexServer(speed=0, start_ms=START, ws_push_interval=0.02, ws_max_messages=5,
                     ws_message_window=1.0) as sx:
        assert sx.streams is not None
        async with connect(ws_url(sx, "/ws/0")) as ws:  # five in a second: within the limit
            for i in range(5):
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
                assert (await reply(ws))["id"] == i
            await asyncio.sleep(1.05)
            for i in range(5):  # the window moved on: five more are fine
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 10 + i}))
                assert (await reply(ws))["id"] == 10 + i
            assert sx.streams.flooded == 0
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 99}))  # the sixth in a second
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await reply(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            assert closed.value.rcvd.reason == "Too many requests"
        assert sx.streams.flooded == 1


async def test_a_subscribe_past_the_stream_limit_is_refused_and_changes_nothing() -> None:
    with SimexServer(speed=0, start_ms=START, ws_push_interval=0.02, ws_max_streams=2) as sx:
        async with connect(ws_url(sx, "/ws/0")) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m", "xrpeth@kline_1m"],
                                      "id": 1}))
            assert await reply(ws) == {"result": None, "id": 1}
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["ethbtc@kline_5m"], "id": 2}))
            error = await reply(ws)
            assert error["code"] == 2 and error["id"] == 2 and "more than 2 streams" in error["msg"]
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
            assert await reply(ws) == {"result": ["btcusdt@kline_1m", "xrpeth@kline_1m"], "id": 3}
        async with connect(ws_url(sx, "/stream?streams=btcusdt@kline_1m/xrpeth@kline_1m/ethbtc@kline_5m")) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_new_connections_past_the_per_ip_limit_are_refused_at_the_handshake() -> None:
    with SimexServer(speed=0, start_ms=START, ws_push_interval=0.02, ws_max_connections=2,
                     ws_connection_window=0.5) as sx:
        assert sx.streams is not None
        async with connect(ws_url(sx, "/ws/0")), connect(ws_url(sx, "/ws/1")):
            with pytest.raises(InvalidStatus) as refused:
                await connect(ws_url(sx, "/ws/2"))
            assert refused.value.response.status_code == 429
            assert json.loads(refused.value.response.body or b"{}")["code"] == -1003
        assert (sx.streams.accepted, sx.streams.refused) == (2, 1)
        await asyncio.sleep(0.55)  # the window moved on
        async with connect(ws_url(sx, "/ws/3")):
            assert sx.streams.accepted == 3
