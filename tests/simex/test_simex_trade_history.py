"""An account's trade history as the exchanges answer it, on the wire: Binance
``GET /api/v3/myTrades`` (parameter combinations, the 24-hour rule, which trades a page
holds) and KuCoin ``GET /api/v1/fills`` (the 7-day rule, newest first, pages)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from sealbot.simex import SimexServer
from sealbot.simex.core import OrderRequest

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS
PASSPHRASE = "history"


@pytest.fixture(scope="module")
def history() -> Iterator[tuple[SimexServer, dict[str, Any], list[int]]]:
    """Six trades (market buys, matched by simex) at t0 + 0 h, 1 h, 2 h, 25 h, 8 days and
    8 days + 1 h, on simex's manual clock; returns the server, the key and the times."""
    with SimexServer(speed=0) as sx:
        account = sx.admin.create_account("history", {"USDT": "100000"})
        key = sx.admin.create_key(int(account["id"]), passphrase=PASSPHRASE)
        ex = sx.exchange
        assert ex is not None
        t0 = ex.clock.now_ms() + HOUR_MS
        times = [t0, t0 + HOUR_MS, t0 + 2 * HOUR_MS, t0 + 25 * HOUR_MS, t0 + 8 * DAY_MS, t0 + 8 * DAY_MS + HOUR_MS]
        for at in times:
            ex.clock.set(at)
            ex.place(ex.keys[key["key"]], OrderRequest("BTCUSDT", "BUY", "MARKET", qty=Decimal("0.001")))
        yield sx, key, times


def _binance(sx: SimexServer, key: dict[str, Any], **params: Any) -> httpx.Response:
    query = urlencode({"symbol": "BTCUSDT", **params, "timestamp": int(time.time() * 1000)})
    signature = hmac.new(key["secret"].encode(), query.encode(), hashlib.sha256).hexdigest()
    return httpx.get(f"{sx.base_url}/api/v3/myTrades?{query}&signature={signature}",
                     headers={"X-MBX-APIKEY": key["key"]})


def _trades(sx: SimexServer, key: dict[str, Any], **params: Any) -> list[dict[str, Any]]:
    response = _binance(sx, key, **params)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def _kucoin(sx: SimexServer, key: dict[str, Any], **params: Any) -> dict[str, Any]:
    path = "/api/v1/fills?" + urlencode({"symbol": "BTC-USDT", **params})
    stamp = str(int(time.time() * 1000))

    def b64(payload: str) -> str:
        return base64.b64encode(hmac.new(key["secret"].encode(), payload.encode(), hashlib.sha256).digest()).decode()

    headers = {"KC-API-KEY": key["key"], "KC-API-TIMESTAMP": stamp, "KC-API-KEY-VERSION": "2",
               "KC-API-PASSPHRASE": b64(PASSPHRASE), "KC-API-SIGN": b64(stamp + "GET" + path)}
    answer: dict[str, Any] = json.loads(httpx.get(f"{sx.base_url}{path}", headers=headers).text)
    return answer


# -- Binance myTrades ---------------------------------------------------------------------
def test_binance_without_a_condition_answers_the_most_recent_trades_oldest_first(history: Any) -> None:
    sx, key, times = history
    assert [t["time"] for t in _trades(sx, key)] == times
    assert [t["time"] for t in _trades(sx, key, limit=2)] == times[-2:]


def test_binance_from_id_answers_the_trades_from_that_id_on(history: Any) -> None:
    sx, key, _ = history
    ids = [t["id"] for t in _trades(sx, key)]
    assert [t["id"] for t in _trades(sx, key, fromId=ids[1], limit=3)] == ids[1:4]
    assert [t["id"] for t in _trades(sx, key, fromId=ids[-1] + 1)] == []


def test_binance_a_window_answers_its_oldest_trades_first(history: Any) -> None:
    sx, key, times = history
    window = _trades(sx, key, startTime=times[0], endTime=times[0] + DAY_MS)
    assert [t["time"] for t in window] == times[:3]  # both ends inclusive; 25 h is outside
    assert [t["time"] for t in _trades(sx, key, startTime=times[0], endTime=times[0] + DAY_MS, limit=2)] == times[:2]


def test_binance_start_time_alone_is_read_as_the_24_hours_from_it(history: Any) -> None:
    sx, key, times = history
    assert [t["time"] for t in _trades(sx, key, startTime=times[0])] == times[:3]  # not the 8-day-old ones
    assert [t["time"] for t in _trades(sx, key, endTime=times[3])] == times[1:4]


def test_binance_order_id_answers_that_orders_trades(history: Any) -> None:
    sx, key, _ = history
    every = _trades(sx, key)
    order = every[2]["orderId"]
    assert [t["id"] for t in _trades(sx, key, orderId=order)] == [every[2]["id"]]
    assert _trades(sx, key, orderId=order, fromId=every[2]["id"] + 1) == []


@pytest.mark.parametrize(("params", "code", "msg"), [
    ({"startTime": 0, "endTime": DAY_MS + 1}, -1127, "More than 24 hours between startTime and endTime."),
    ({"fromId": 1, "startTime": 0}, -1128, "Combination of optional parameters invalid."),
    ({"fromId": 1, "endTime": 0}, -1128, "Combination of optional parameters invalid."),
    ({"orderId": 1, "startTime": 0, "endTime": 1}, -1128, "Combination of optional parameters invalid."),
])
def test_binance_refuses_what_it_does_not_support(history: Any, params: dict[str, int], code: int, msg: str) -> None:
    sx, key, _ = history
    response = _binance(sx, key, **params)
    assert response.status_code == 400 and response.json() == {"code": code, "msg": msg}


def test_binance_a_window_of_exactly_24_hours_is_allowed(history: Any) -> None:
    sx, key, times = history
    assert len(_trades(sx, key, startTime=times[2], endTime=times[2] + DAY_MS)) == 2


# -- KuCoin fills -------------------------------------------------------------------------
def test_kucoin_pages_newest_first_over_at_most_seven_days(history: Any) -> None:
    sx, key, times = history
    answer = _kucoin(sx, key, startAt=times[0], endAt=times[0] + 7 * DAY_MS, pageSize=10)
    assert answer["code"] == "200000"
    assert [f["createdAt"] for f in answer["data"]["items"]] == times[3::-1]
    assert answer["data"]["totalNum"] == 4
    second = _kucoin(sx, key, startAt=times[0], endAt=times[0] + 7 * DAY_MS, pageSize=10, currentPage=2)
    assert second["data"]["items"] == []
    refused = _kucoin(sx, key, startAt=times[0], endAt=times[0] + 7 * DAY_MS + 1)
    assert refused["code"] == "400100" and "7 days" in refused["msg"]


def test_kucoin_start_alone_means_the_seven_days_from_it_and_nothing_the_last_day(history: Any) -> None:
    sx, key, times = history
    week = _kucoin(sx, key, startAt=times[0])["data"]["items"]
    assert [f["createdAt"] for f in week] == times[3::-1]  # the 8-day-later trades are outside
    before = _kucoin(sx, key, endAt=times[5])["data"]["items"]
    assert [f["createdAt"] for f in before] == times[5:2:-1]  # [endAt - 7 days, endAt]
    last_day = _kucoin(sx, key)["data"]["items"]  # simex's clock stands at the last trade
    assert [f["createdAt"] for f in last_day] == [times[5], times[4]]
