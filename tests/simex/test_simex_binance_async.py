"""The async ccxt Binance client against simex, under concurrency and injected faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import ccxt
import ccxt.async_support as accxt
import pytest

from sealbot.simex import SimexServer

from .ccxt_simex import point_at_simex


@pytest.fixture
async def client(simex: SimexServer) -> AsyncIterator[tuple[Any, dict[str, Any], dict[str, Any]]]:
    account = simex.admin.create_account("async", {"USDT": "50000", "BTC": "1"})
    key = simex.admin.create_key(account["id"])
    exchange = point_at_simex(accxt.binance({"apiKey": key["key"], "secret": key["secret"],
                                             "enableRateLimit": False, "timeout": 3000}), simex.base_url)
    await exchange.load_markets()
    try:
        yield exchange, account, key
    finally:
        simex.admin.clear_faults()
        await exchange.close()


async def test_async_client_trades_and_reads_back(client: tuple[Any, dict[str, Any], dict[str, Any]]) -> None:
    exchange, _, _ = client
    ticker = await exchange.fetch_ticker("BTC/USDT")
    limit = await exchange.create_order("BTC/USDT", "limit", "buy", 0.01, round(ticker["last"] * 0.9, 2))
    market = await exchange.create_order("BTC/USDT", "market", "buy", 0.01)
    assert (await exchange.fetch_order(limit["id"], "BTC/USDT"))["status"] == "open"
    assert (await exchange.cancel_order(limit["id"], "BTC/USDT"))["status"] == "canceled"
    trades = await exchange.fetch_my_trades("BTC/USDT")
    assert [t["order"] for t in trades] == [market["id"]]
    balance = await exchange.fetch_balance()
    assert balance["BTC"]["free"] == pytest.approx(1 + 0.01 - 0.00001)


async def test_hundreds_of_concurrent_requests_are_served(client: tuple[Any, dict[str, Any], dict[str, Any]]
                                                          ) -> None:
    exchange, _, _ = client
    price = (await exchange.fetch_ticker("BTC/USDT"))["last"]
    reads = [exchange.fetch_ticker("BTC/USDT") for _ in range(200)]
    orders = [exchange.create_order("BTC/USDT", "limit", "buy", 0.001, round(price * 0.8, 2)) for _ in range(100)]
    results = await asyncio.gather(*reads, *orders)
    assert len({r["id"] for r in results[200:]}) == 100
    assert len(await exchange.fetch_open_orders("BTC/USDT")) == 100


async def test_latency_fault_delays_only_the_named_key(simex: SimexServer,
                                                       client: tuple[Any, dict[str, Any], dict[str, Any]]) -> None:
    exchange, _, key = client
    simex.admin.add_fault("latency", key=key["key"], value="0.3", times=1)
    simex.admin.add_fault("latency", key="someone-else", value="5")
    started = time.monotonic()
    await exchange.fetch_balance()
    assert 0.3 <= time.monotonic() - started < 3
    started = time.monotonic()
    await exchange.fetch_balance()
    assert time.monotonic() - started < 2  # the 0.3 s rule is used up; the 5 s rule is someone else's


async def test_transport_faults_raise_ccxt_network_errors(simex: SimexServer,
                                                          client: tuple[Any, dict[str, Any], dict[str, Any]]) -> None:
    exchange, _, _ = client
    simex.admin.add_fault("timeout", path_prefix="/api/v3/account", value="5", times=1)
    exchange.timeout = 500
    with pytest.raises(ccxt.RequestTimeout):
        await exchange.fetch_balance()
    exchange.timeout = 3000
    simex.admin.add_fault("error_5xx", value="503", times=1)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await exchange.fetch_ticker("BTC/USDT")
    simex.admin.add_fault("rate_limit", times=1)
    with pytest.raises(ccxt.DDoSProtection):
        await exchange.fetch_ticker("BTC/USDT")
    assert (await exchange.fetch_ticker("BTC/USDT"))["symbol"] == "BTC/USDT"


async def test_partial_fill_and_reject_faults(simex: SimexServer,
                                              client: tuple[Any, dict[str, Any], dict[str, Any]]) -> None:
    exchange, account, key = client
    simex.admin.add_fault("partial_fill", key=key["key"], value="0.4", times=1)
    market = await exchange.create_order("BTC/USDT", "market", "buy", 0.01)
    assert market["status"] == "expired" and market["filled"] == pytest.approx(0.004)
    price = (await exchange.fetch_ticker("BTC/USDT"))["last"]
    simex.admin.add_fault("partial_fill", key=key["key"], value="0.5", times=1)
    crossing = await exchange.create_order("BTC/USDT", "limit", "buy", 0.01, round(price * 1.01, 2))
    assert crossing["status"] == "open" and crossing["filled"] == pytest.approx(0.005)
    simex.admin.add_fault("reject", key=key["key"], times=1)
    with pytest.raises(ccxt.InvalidOrder):
        await exchange.create_order("BTC/USDT", "market", "buy", 0.01)
    stored = simex.admin.orders(account["id"])
    assert [o["status"] for o in stored] == ["EXPIRED", "PARTIALLY_FILLED"]
