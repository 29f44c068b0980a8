"""End to end through ccxt: resting orders fill only when the replay trades through them,
and the account's balances equal its start plus its fills minus its fees, to the last unit."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt

from sealbot.simex import SimexServer
from sealbot.simex.markets import DEFAULT_MARKETS, load_bars

from .ccxt_simex import point_at_simex

START = 1_700_000_040_000
BTC = DEFAULT_MARKETS[0]
BARS = load_bars(BTC.data_file, BTC.tick)


def test_limit_fills_when_traded_through_and_the_books_balance() -> None:
    horizon = 600
    floor = min(b.low for b in BARS[:horizon])
    peak = max(b.high for b in BARS[:horizon])
    with SimexServer(speed=0, start_ms=START) as sx:
        account = sx.admin.create_account("e2e", {"USDT": "100000", "BTC": "1"})
        key = sx.admin.create_key(account["id"])
        ex = point_at_simex(ccxt.binance({"apiKey": key["key"], "secret": key["secret"], "enableRateLimit": False}),
                            sx.base_url)
        ex.load_markets()
        touch = ex.create_order("BTC/USDT", "limit", "buy", 0.1, float(floor))
        through = ex.create_order("BTC/USDT", "limit", "buy", 0.1, float(floor + BTC.tick))
        sell_touch = ex.create_order("BTC/USDT", "limit", "sell", 0.2, float(peak))
        sell_through = ex.create_order("BTC/USDT", "limit", "sell", 0.2, float(peak - BTC.tick))
        taker = ex.create_order("BTC/USDT", "market", "buy", 0.05)
        assert ex.fetch_order(through["id"], "BTC/USDT")["status"] == "open"

        sx.admin.set_clock(advance_seconds=horizon * 60)

        assert ex.fetch_order(touch["id"], "BTC/USDT")["status"] == "open"
        assert ex.fetch_order(sell_touch["id"], "BTC/USDT")["status"] == "open"
        for order, price in ((through, floor + BTC.tick), (sell_through, peak - BTC.tick)):
            done = ex.fetch_order(order["id"], "BTC/USDT")
            assert done["status"] == "closed" and Decimal(done["info"]["price"]) == price
        trades = ex.fetch_my_trades("BTC/USDT")
        assert {t["order"] for t in trades} == {through["id"], sell_through["id"], taker["id"]}
        assert {t["order"]: t["takerOrMaker"] for t in trades}[through["id"]] == "maker"

        base, quote = Decimal(1), Decimal(100000)
        for t in trades:
            info = t["info"]
            qty, quote_qty, fee = Decimal(info["qty"]), Decimal(info["quoteQty"]), Decimal(info["commission"])
            assert quote_qty == Decimal(info["price"]) * qty
            if info["isBuyer"]:
                assert info["commissionAsset"] == "BTC"
                base, quote = base + qty - fee, quote - quote_qty
            else:
                assert info["commissionAsset"] == "USDT"
                base, quote = base - qty, quote + quote_qty - fee
        balances = sx.admin.account(account["id"])["balances"]
        locked_quote = floor * Decimal("0.1")  # the untouched buy still reserves its quote
        locked_base = Decimal("0.2")  # and the untouched sell its base
        assert Decimal(balances["USDT"]["locked"]) == locked_quote
        assert Decimal(balances["BTC"]["locked"]) == locked_base
        assert Decimal(balances["USDT"]["free"]) + locked_quote == quote
        assert Decimal(balances["BTC"]["free"]) + locked_base == base
        account_view: dict[str, Any] = ex.fetch_balance()
        assert Decimal(str(account_view["BTC"]["total"])) == base
