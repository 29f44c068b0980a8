"""Market rules come out of real ccxt market dicts exactly, in Decimal."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealbot.domain import Pair
from sealbot.venues.ccxt_venue import CcxtVenue
from sealbot.venues.markets import (
    DECIMAL_PLACES,
    SIGNIFICANT_DIGITS,
    TICK_SIZE,
    increment,
    rules_from_market,
    spot_rules,
    to_decimal,
)

from .conftest import FakeHttp

# A symbol as Binance's GET /api/v3/exchangeInfo documents it.
BINANCE_ETHBTC = {
    "symbol": "ETHBTC", "status": "TRADING", "baseAsset": "ETH", "baseAssetPrecision": 8,
    "quoteAsset": "BTC", "quotePrecision": 8, "quoteAssetPrecision": 8,
    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
    "icebergAllowed": True, "ocoAllowed": True, "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "0.00001000", "maxPrice": "922327.00000000",
         "tickSize": "0.00001000"},
        {"filterType": "LOT_SIZE", "minQty": "0.00010000", "maxQty": "100000.00000000", "stepSize": "0.00010000"},
        {"filterType": "NOTIONAL", "minNotional": "0.00010000", "applyMinToMarket": True,
         "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
    ],
    "permissions": [], "permissionSets": [["SPOT"]],
}
BINANCE_HALTED = {**BINANCE_ETHBTC, "symbol": "LTCBTC", "baseAsset": "LTC", "status": "BREAK"}

# KuCoin GET /api/v2/symbols, as documented.
KUCOIN_SYMBOLS = {"code": "200000", "data": [{
    "symbol": "BTC-USDT", "name": "BTC-USDT", "baseCurrency": "BTC", "quoteCurrency": "USDT",
    "feeCurrency": "USDT", "market": "USDS", "baseMinSize": "0.00001", "quoteMinSize": "0.1",
    "baseMaxSize": "10000000000", "quoteMaxSize": "99999999", "baseIncrement": "0.00000001",
    "quoteIncrement": "0.000001", "priceIncrement": "0.1", "priceLimitRate": "0.1", "minFunds": "0.1",
    "isMarginEnabled": True, "enableTrading": True, "feeCategory": 1, "makerFeeCoefficient": "1.00",
    "takerFeeCoefficient": "1.00", "st": False,
}]}


async def test_binance_exchange_info_becomes_exact_rules() -> None:
    venue = CcxtVenue("binance", urls={"api_base": "http://127.0.0.1:9"})
    http = FakeHttp({"/api/v3/exchangeInfo": {"timezone": "UTC", "serverTime": 1, "rateLimits": [],
                                              "exchangeFilters": [], "symbols": [BINANCE_ETHBTC, BINANCE_HALTED]}})
    venue.exchange.fetch = http
    try:
        rules = await venue.load_markets()
    finally:
        await venue.close()
    assert list(rules) == [Pair("ETH", "BTC")]  # the halted market is left out
    eth = rules[Pair("ETH", "BTC")]
    assert (eth.tick_size, eth.step_size) == (Decimal("0.00001"), Decimal("0.0001"))
    assert (eth.min_amount, eth.max_amount) == (Decimal("0.0001"), Decimal("100000"))
    assert (eth.min_notional, eth.max_notional) == (Decimal("0.0001"), Decimal("9000000"))
    # spot only: no futures, margin or currency endpoints were asked for
    assert [url for _, url, _, _ in http.calls] == ["http://127.0.0.1:9/api/v3/exchangeInfo"]


async def test_kucoin_symbols_become_exact_rules() -> None:
    venue = CcxtVenue("kucoin", urls={"api_base": "http://127.0.0.1:9"})
    venue.exchange.fetch = FakeHttp({"/api/v2/symbols": KUCOIN_SYMBOLS, "/api/v1/currencies": {
        "code": "200000", "data": []}, "/api/v3/currencies": {"code": "200000", "data": []}})
    try:
        rules = await venue.load_markets()
    finally:
        await venue.close()
    btc = rules[Pair("BTC", "USDT")]
    assert (btc.tick_size, btc.step_size) == (Decimal("0.1"), Decimal("0.00000001"))
    assert (btc.min_amount, btc.max_amount) == (Decimal("0.00001"), Decimal("10000000000"))
    assert btc.min_notional == Decimal("0.1")


def test_decimal_places_mode_means_a_count_of_decimals() -> None:
    market = {"base": "XBT", "quote": "EUR", "spot": True, "precision": {"price": 1, "amount": 8},
              "limits": {"amount": {"min": 0.0001}, "cost": {"min": 0.5}}}
    rules = rules_from_market(market, DECIMAL_PLACES)
    assert (rules.tick_size, rules.step_size) == (Decimal("0.1"), Decimal("0.00000001"))
    assert (rules.min_amount, rules.min_notional) == (Decimal("0.0001"), Decimal("0.5"))


def test_significant_digits_mode_has_no_fixed_tick() -> None:
    market = {"base": "BTC", "quote": "USD", "spot": True, "precision": {"price": 5, "amount": 8}, "limits": {}}
    rules = rules_from_market(market, SIGNIFICANT_DIGITS)
    assert rules.tick_size == 0 and rules.step_size == 0


def test_non_spot_and_inactive_markets_are_skipped() -> None:
    base = {"base": "BTC", "quote": "USDT", "precision": {"price": 0.01, "amount": 0.001}, "limits": {}}
    markets = {"BTC/USDT": {**base, "spot": True}, "BTC/USDT:USDT": {**base, "spot": False, "type": "swap"},
               "ETH/USDT": {**base, "base": "ETH", "spot": True, "active": False}}
    assert list(spot_rules(markets, TICK_SIZE)) == [Pair("BTC", "USDT")]


@pytest.mark.parametrize(("value", "expected"), [
    (1e-05, "0.00001"), (0.1, "0.1"), (100000.0, "100000.0"), (3, "3"), ("0.00010000", "0.00010000"),
])
def test_to_decimal_keeps_the_text_ccxt_parsed(value: object, expected: str) -> None:
    assert to_decimal(value) == Decimal(expected)


@given(st.decimals(min_value=Decimal("1e-8"), max_value=Decimal("9999999.99999999"), places=8, allow_nan=False))
def test_float_round_trip_is_exact_for_exchange_numbers(number: Decimal) -> None:
    # decimal text of up to 15 significant digits (a float holds 15 exactly), parsed to float
    # by ccxt, comes back as the same number
    assert to_decimal(float(str(number))) == number


def test_fractional_decimal_places_are_refused() -> None:
    with pytest.raises(ValueError):
        increment(1.5, DECIMAL_PLACES)
