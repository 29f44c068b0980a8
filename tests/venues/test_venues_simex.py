"""The ccxt venue trades on simex through custody's LocalSigner, with no secret outside custody."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from sealbot.custody.signer_socket import SignerServer, SocketSigner
from sealbot.domain import ClientOrderId, Order, OrderStatus, OrderType, Pair, Side
from sealbot.simex import SimexServer
from sealbot.venues.base import Verdict, is_foreign
from sealbot.venues.ccxt_venue import CcxtVenue
from sealbot.venues.errors import (
    AuthFailed,
    ExchangeRejectedOrder,
    ExchangeUnavailable,
    InsufficientFunds,
    RateLimited,
    UnknownOrder,
)
from sealbot.venues.paper import PaperVenue
from sealbot.venues.permissions import check_key

from .conftest import RealCustody
from .test_venues_signing import leaks, secret_free

BTC_USDT = Pair("BTC", "USDT")


@pytest.fixture(scope="module")
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as server:
        yield server


def _key(simex: SimexServer, balances: dict[str, str], **kwargs: object) -> tuple[str, str]:
    account = simex.admin.create_account("venue-test", balances)
    created = simex.admin.create_key(int(account["id"]), **kwargs)  # type: ignore[arg-type]
    return created["key"], created["secret"]


def _cid(step: str) -> ClientOrderId:
    return ClientOrderId("V1", 1, step)


async def test_binance_venue_trades_on_simex_through_the_signer(
        simex: SimexServer, custody: RealCustody, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    api_key, secret = _key(simex, {"USDT": "100000", "BTC": "1"})
    handle = custody.link(101, api_key, secret)
    venue = CcxtVenue("binance", signer=custody.signer, handle=handle, urls={"api_base": simex.base_url})
    venue.exchange.verbose = True  # ccxt prints every request and response: none may carry the secret
    try:
        rules = (await venue.load_markets())[BTC_USDT]
        assert (rules.tick_size, rules.step_size, rules.min_notional) == (
            Decimal("0.01"), Decimal("0.00001"), Decimal("5"))
        balances = await venue.fetch_balances()
        assert balances["USDT"].free == Decimal("100000") and balances["BTC"].free == Decimal("1")
        last = (await venue.fetch_ticker(BTC_USDT)).last
        assert last is not None and last > 0

        # a resting limit buy far below the market, then cancelled by client id
        low = rules.price(last * Decimal("0.5"), Side.BUY)
        resting = await venue.create_order(Order(_cid("rest"), BTC_USDT, Side.BUY, OrderType.LIMIT,
                                                 Decimal("0.01"), low))
        assert resting.status is OrderStatus.OPEN and resting.exchange_id
        assert [o.client_id for o in await venue.fetch_open_orders(BTC_USDT)] == [_cid("rest")]
        assert (await venue.fetch_balances())["USDT"].used == Decimal("0.01") * low
        canceled = await venue.cancel_order(_cid("rest"), BTC_USDT)
        assert canceled.status is OrderStatus.CANCELED
        assert (await venue.fetch_balances())["USDT"].free == Decimal("100000")

        # a market buy and a marketable limit sell fill, and come back as our fills
        bought = await venue.create_order(Order(_cid("mkt"), BTC_USDT, Side.BUY, OrderType.MARKET,
                                                Decimal("0.01")))
        assert bought.status is OrderStatus.FILLED
        high_enough = rules.price(last * Decimal("0.9"), Side.SELL)
        sold = await venue.create_order(Order(_cid("lim"), BTC_USDT, Side.SELL, OrderType.LIMIT,
                                              Decimal("0.005"), high_enough))
        assert sold.status is OrderStatus.FILLED
        assert (await venue.fetch_order(_cid("lim"), BTC_USDT)).filled == Decimal("0.005")
        fills = await venue.fetch_my_trades(BTC_USDT)
        assert {f.client_id for f in fills} == {_cid("mkt"), _cid("lim")}
        assert sum(f.amount for f in fills if f.side is Side.BUY) == Decimal("0.01")

        with pytest.raises(UnknownOrder):
            await venue.fetch_order(_cid("never"), BTC_USDT)
        with pytest.raises(InsufficientFunds):
            await venue.create_order(Order(_cid("huge"), BTC_USDT, Side.SELL, OrderType.LIMIT,
                                           Decimal("5"), rules.price(last * 2, Side.SELL)))
        assert secret_free(venue, secret)
    finally:
        await venue.close()
    printed = capsys.readouterr()
    assert "X-MBX-APIKEY" in printed.out  # the verbose dump did happen
    assert not leaks(caplog.text + printed.out + printed.err, secret)


async def test_permissions_checked_on_simex(simex: SimexServer, custody: RealCustody) -> None:
    api_key, secret = _key(simex, {"USDT": "10"}, permissions=["reading", "spot", "withdrawals"])
    report = await check_key("binance", custody.signer, custody.link(102, api_key, secret),
                             urls={"api_base": simex.base_url}, egress_ip="127.0.0.1")
    assert report.verdict is Verdict.REFUSED and report.can_withdraw is True

    api_key, secret = _key(simex, {"USDT": "10"}, ip_whitelist=["127.0.0.1"])
    report = await check_key("binance", custody.signer, custody.link(103, api_key, secret),
                             urls={"api_base": simex.base_url}, egress_ip="127.0.0.1")
    assert report.verdict is Verdict.OK and report.ip_restricted is True

    api_key, secret = _key(simex, {"USDT": "10"})
    report = await check_key("binance", custody.signer, custody.link(104, api_key, secret),
                             urls={"api_base": simex.base_url})
    assert report.verdict is Verdict.FLAGGED and report.ip_restricted is False


async def test_a_key_whitelisted_elsewhere_is_refused_by_the_exchange(simex: SimexServer,
                                                                       custody: RealCustody) -> None:
    api_key, secret = _key(simex, {"USDT": "10"}, ip_whitelist=["203.0.113.7"])
    venue = CcxtVenue("binance", signer=custody.signer, handle=custody.link(105, api_key, secret),
                      urls={"api_base": simex.base_url})
    try:
        with pytest.raises(AuthFailed):
            await venue.fetch_balances()
    finally:
        await venue.close()


async def test_every_order_type_round_trips_on_simex(simex: SimexServer, custody: RealCustody) -> None:
    api_key, secret = _key(simex, {"USDT": "100000", "BTC": "1"})
    venue = CcxtVenue("binance", signer=custody.signer, handle=custody.link(106, api_key, secret),
                      urls={"api_base": simex.base_url})
    try:
        rules = (await venue.load_markets())[BTC_USDT]
        last = (await venue.fetch_ticker(BTC_USDT)).last
        assert last is not None
        wanted = {
            _cid("mk"): (OrderType.LIMIT_MAKER, Side.BUY, last * Decimal("0.9"), None),
            _cid("sl"): (OrderType.STOP_LOSS_LIMIT, Side.SELL, last * Decimal("0.8"), last * Decimal("0.85")),
            _cid("tp"): (OrderType.TAKE_PROFIT_LIMIT, Side.SELL, last * Decimal("1.2"), last * Decimal("1.15")),
        }
        for cid, (kind, side, price, stop) in wanted.items():
            order = Order(cid, BTC_USDT, side, kind, Decimal("0.01"), rules.price(price, side),
                          rules.price(stop, side) if stop else None)
            assert (await venue.create_order(order)).status is OrderStatus.OPEN
        open_orders = {o.client_id: o for o in await venue.fetch_open_orders()}  # account-wide
        assert set(open_orders) == set(wanted)
        for cid, (kind, side, _, stop) in wanted.items():
            assert open_orders[cid].type is kind and open_orders[cid].side is side
            assert open_orders[cid].stop_price == (rules.price(stop, side) if stop else None)
            assert (await venue.cancel_order(cid, BTC_USDT)).status is OrderStatus.CANCELED
        assert await venue.fetch_open_orders(BTC_USDT) == []
    finally:
        await venue.close()


async def test_venue_signs_through_a_signer_behind_a_unix_socket(simex: SimexServer, custody: RealCustody,
                                                                 tmp_path: Path) -> None:
    """The deployed shape: the signer in its own process, reached over a socket; the
    engine side holds a ``SocketSigner`` and nothing secret at all."""
    api_key, secret = _key(simex, {"USDT": "1000"})
    handle = custody.link(107, api_key, secret)
    server = SignerServer(tmp_path / "signer.sock", custody.signer, allowed_uids=[os.getuid()])
    server.start_in_thread()
    remote = SocketSigner(tmp_path / "signer.sock")
    try:
        remote_handle = remote.handle_for(handle.owner_id, handle.account_id, "engine")
        venue = CcxtVenue("binance", signer=remote, handle=remote_handle, urls={"api_base": simex.base_url})
        try:
            await venue.load_markets()
            placed = await venue.create_order(Order(_cid("sock"), BTC_USDT, Side.BUY, OrderType.MARKET,
                                                    Decimal("0.001")))
            assert placed.status is OrderStatus.FILLED
            assert (await venue.fetch_balances())["BTC"].total > 0
            assert secret_free(venue, secret)
        finally:
            await venue.close()
    finally:
        remote.close()
        await asyncio.to_thread(server.shutdown)


async def test_paper_venue_fills_on_simex_prices(simex: SimexServer) -> None:
    """Paper trading on real (replayed) market data: public data only, no key at all."""
    data = CcxtVenue("binance", urls={"api_base": simex.base_url})
    paper = PaperVenue({}, {"USDT": Decimal("1000")}, data_venue=data)
    try:
        rules = (await paper.load_markets())[BTC_USDT]
        price = (await data.fetch_ticker(BTC_USDT)).last
        assert price is not None and rules.tick_size == Decimal("0.01")
        order = await paper.create_order(Order(_cid("pp"), BTC_USDT, Side.BUY, OrderType.MARKET,
                                               Decimal("0.001")))
        assert order.status is OrderStatus.FILLED and order.average_price == price
        candles = await paper.fetch_candles(BTC_USDT, "1m", limit=5)
        assert 1 <= len(candles) <= 5  # simex has replayed as many as its clock has reached
        assert all(c.pair == BTC_USDT and c.low <= c.open <= c.high and c.low <= c.close <= c.high
                   for c in candles)
    finally:
        await paper.close()  # closes the data venue too


async def test_kucoin_venue_trades_on_simex_through_the_signer(simex: SimexServer, custody: RealCustody,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    account = simex.admin.create_account("kucoin-user", {"USDT": "100000", "BTC": "1"})
    created = simex.admin.create_key(int(account["id"]), passphrase="kc-pass-phrase-42",
                                     ip_whitelist=["127.0.0.1"])
    secret = created["secret"]
    handle = custody.link(108, created["key"], secret, passphrase="kc-pass-phrase-42")
    venue = CcxtVenue("kucoin", signer=custody.signer, handle=handle, urls={"api_base": simex.base_url},
                      egress_ip="127.0.0.1")
    try:
        report = await venue.check_permissions()
        assert report.verdict is Verdict.OK and report.ip_whitelist == ("127.0.0.1",)
        rules = (await venue.load_markets())[BTC_USDT]
        assert rules.tick_size == Decimal("0.01") and rules.step_size == Decimal("0.00001")
        assert (await venue.fetch_balances())["USDT"].free == Decimal("100000")
        last = (await venue.fetch_ticker(BTC_USDT)).last
        assert last is not None

        resting = await venue.create_order(Order(_cid("kr"), BTC_USDT, Side.BUY, OrderType.LIMIT,
                                                 Decimal("0.01"), rules.price(last / 2, Side.BUY)))
        assert resting.status is OrderStatus.OPEN
        assert [o.client_id for o in await venue.fetch_open_orders(BTC_USDT)] == [_cid("kr")]
        assert (await venue.cancel_order(_cid("kr"), BTC_USDT)).status is OrderStatus.CANCELED

        bought = await venue.create_order(Order(_cid("km"), BTC_USDT, Side.BUY, OrderType.MARKET, Decimal("0.01")))
        assert bought.status is OrderStatus.FILLED
        fills = await venue.fetch_my_trades(BTC_USDT)
        assert {f.client_id for f in fills} == {_cid("km")} and sum(f.amount for f in fills) == Decimal("0.01")
        with pytest.raises(UnknownOrder):
            await venue.fetch_order(_cid("none"), BTC_USDT)
        with pytest.raises(InsufficientFunds):
            await venue.create_order(Order(_cid("kx"), BTC_USDT, Side.SELL, OrderType.LIMIT, Decimal("5"),
                                           rules.price(last * 2, Side.SELL)))
        assert secret_free(venue, secret) and secret_free(venue, "kc-pass-phrase-42")
    finally:
        await venue.close()
    assert not leaks(caplog.text, secret) and not leaks(caplog.text, "kc-pass-phrase-42")


@pytest.mark.parametrize(("kind", "value", "error"), [
    ("error_5xx", None, ExchangeUnavailable),
    ("rate_limit", None, RateLimited),
    ("timeout", "5", ExchangeUnavailable),
    ("reject", None, ExchangeRejectedOrder),
])
async def test_injected_faults_become_named_errors(simex: SimexServer, custody: RealCustody, kind: str,
                                                   value: str | None, error: type[Exception]) -> None:
    api_key, secret = _key(simex, {"USDT": "1000"})
    venue = CcxtVenue("binance", signer=custody.signer, handle=custody.link(109, api_key, secret),
                      urls={"api_base": simex.base_url}, timeout_ms=1000)
    try:
        await venue.load_markets()
        # simex checks "reject" inside its matching engine, the others at the HTTP door
        where = None if kind == "reject" else "/api/v3/order"
        simex.admin.add_fault(kind, key=api_key, path_prefix=where, value=value, times=1)
        with pytest.raises(error) as caught:
            await venue.create_order(Order(_cid(kind.replace("_", "")[:8]), BTC_USDT, Side.BUY, OrderType.MARKET,
                                           Decimal("0.001")))
        assert str(caught.value).startswith("binance") or "binance" in str(caught.value)
        assert not leaks(str(caught.value), secret)
        # the fault was one-shot: the same order goes through afterwards
        placed = await venue.create_order(Order(_cid(kind.replace("_", "")[:8]), BTC_USDT, Side.BUY, OrderType.MARKET,
                                                Decimal("0.001")))
        assert placed.status is OrderStatus.FILLED
    finally:
        await venue.close()
        simex.admin.clear_faults()


async def test_partial_fills_are_reported_as_such(simex: SimexServer, custody: RealCustody) -> None:
    api_key, secret = _key(simex, {"USDT": "100000"})
    venue = CcxtVenue("binance", signer=custody.signer, handle=custody.link(110, api_key, secret),
                      urls={"api_base": simex.base_url})
    try:
        rules = (await venue.load_markets())[BTC_USDT]
        last = (await venue.fetch_ticker(BTC_USDT)).last
        assert last is not None
        simex.admin.add_fault("partial_fill", key=api_key, value="0.5")
        placed = await venue.create_order(Order(_cid("part"), BTC_USDT, Side.BUY, OrderType.LIMIT,
                                                Decimal("0.01"), rules.price(last * Decimal("1.05"), Side.BUY)))
        assert placed.status is OrderStatus.PARTIALLY_FILLED
        assert Decimal(0) < placed.filled < Decimal("0.01")
        fills = await venue.fetch_my_trades(BTC_USDT)
        assert sum(f.amount for f in fills if f.client_id == _cid("part")) == placed.filled
    finally:
        await venue.close()
        simex.admin.clear_faults()


async def test_orders_placed_with_a_leaked_key_show_up_as_foreign(simex: SimexServer, custody: RealCustody) -> None:
    """The leak's signature: someone else, holding the key, trades on the account."""
    import ccxt.async_support as ccxt_async

    api_key, secret = _key(simex, {"USDT": "100000"})
    thief = ccxt_async.binance({"apiKey": api_key, "secret": secret, "options": {
        "fetchMarkets": {"types": ["spot"]}, "fetchMargins": False, "fetchCurrencies": False}})
    thief.urls["api"] = {name: simex.base_url + "/api/v3" for name in ("public", "private")}
    venue = CcxtVenue("binance", signer=custody.signer, handle=custody.link(111, api_key, secret),
                      urls={"api_base": simex.base_url})
    try:
        last = (await venue.fetch_ticker(BTC_USDT)).last
        assert last is not None
        await thief.create_order("BTC/USDT", "limit", "buy", 0.01, float(last / 2))
        await thief.create_order("BTC/USDT", "market", "buy", 0.001)
        await venue.create_order(Order(_cid("mine"), BTC_USDT, Side.BUY, OrderType.MARKET, Decimal("0.001")))
        open_orders = await venue.fetch_open_orders(BTC_USDT)
        assert len(open_orders) == 1 and is_foreign(open_orders[0].client_id)
        fills = await venue.fetch_my_trades(BTC_USDT)
        assert sorted(is_foreign(f.client_id) for f in fills) == [False, True]
        assert [f.client_id for f in fills if not is_foreign(f.client_id)] == [_cid("mine")]
    finally:
        await thief.close()
        await venue.close()
