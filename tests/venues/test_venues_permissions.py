"""Key-permission parsers on response bodies shaped as each exchange documents them."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from sealbot.domain import Refused
from sealbot.venues.base import NOT_REPORTED, IpPolicy, Verdict
from sealbot.venues.ccxt_venue import CcxtVenue
from sealbot.venues.permissions import (
    NO_TRADE,
    TRANSFER,
    WITHDRAW,
    WITHDRAW_UNKNOWN,
    check_exchange_permissions,
    check_key,
    parse_binance,
    parse_bybit,
    parse_kraken,
    parse_kucoin,
    parse_okx,
)

from .conftest import FakeHandle, FakeHttp, FakeSigner, FakeSignRequest

# GET /sapi/v1/account/apiRestrictions, Binance wallet docs example, with a safe key
BINANCE_SAFE = {
    "ipRestrict": True, "createTime": 1698645219000, "enableReading": True, "enableWithdrawals": False,
    "enableInternalTransfer": False, "enableMargin": False, "enableFutures": False,
    "permitsUniversalTransfer": False, "enableVanillaOptions": False, "enableFixApiTrade": False,
    "enableFixReadOnly": True, "enableSpotAndMarginTrading": True, "enablePortfolioMarginTrading": False,
}


def test_binance_safe_key_is_ok() -> None:
    report = parse_binance(BINANCE_SAFE)
    assert report.verdict is Verdict.OK and report.reasons == ()
    assert (report.can_trade, report.can_withdraw, report.can_transfer, report.ip_restricted) == (
        True, False, False, True)
    report.raise_if_refused()


@pytest.mark.parametrize(("field", "reason"), [
    ("enableWithdrawals", WITHDRAW), ("enableInternalTransfer", TRANSFER), ("permitsUniversalTransfer", TRANSFER),
])
def test_binance_money_moving_keys_are_refused(field: str, reason: str) -> None:
    report = parse_binance({**BINANCE_SAFE, field: True})
    assert report.verdict is Verdict.REFUSED and reason in report.reasons
    with pytest.raises(Refused, match="key permissions"):
        report.raise_if_refused()


@pytest.mark.parametrize("body", [{}, {"code": 0, "msg": "ok"}, {k: v for k, v in BINANCE_SAFE.items()
                                                                  if k != "enableWithdrawals"}])
def test_a_binance_answer_that_does_not_say_whether_the_key_can_withdraw_is_refused(body: dict[str, object]) -> None:
    report = parse_binance(body)  # an empty or unexpected body passed as a safe key before
    assert report.verdict is Verdict.REFUSED and WITHDRAW_UNKNOWN in report.reasons
    assert report.can_withdraw is None


def test_binance_key_without_spot_trading_is_refused_with_a_clear_reason() -> None:
    report = parse_binance({**BINANCE_SAFE, "enableSpotAndMarginTrading": False})
    assert report.verdict is Verdict.REFUSED and report.reasons == (NO_TRADE,)


def test_binance_unrestricted_ip_is_flagged_or_refused_under_strict() -> None:
    body = {**BINANCE_SAFE, "ipRestrict": False, "tradingAuthorityExpirationTime": 1628985600000}
    warned = parse_binance(body, IpPolicy.WARN, egress_ip="203.0.113.7")
    assert warned.verdict is Verdict.FLAGGED and warned.egress_ip == "203.0.113.7"
    assert any("203.0.113.7" in r for r in warned.reasons)
    assert any("tradingAuthorityExpirationTime" in r for r in warned.reasons)
    assert parse_binance(body, IpPolicy.STRICT).verdict is Verdict.REFUSED


# GET /api/v1/user/api-key (KuCoin "Get Apikey Info")
KUCOIN = {"code": "200000", "data": {"remark": "sealbot", "apiKey": "6704b7bd9e3c2d00013c0a2f", "apiVersion": 3,
                                     "permission": "General,Spot", "ipWhitelist": "203.0.113.7,198.51.100.2",
                                     "createdAt": 1729821494000, "uid": 165111215, "isMaster": True}}


def test_kucoin_trading_key_with_whitelist_is_ok() -> None:
    report = parse_kucoin(KUCOIN, egress_ip="203.0.113.7")
    assert report.verdict is Verdict.OK
    assert report.ip_whitelist == ("203.0.113.7", "198.51.100.2") and report.can_trade is True


@pytest.mark.parametrize(("permission", "reason"), [("General,Spot,Withdrawal", WITHDRAW),
                                                    ("General,Spot,InnerTransfer", TRANSFER),
                                                    ("General", NO_TRADE)])
def test_kucoin_refusals(permission: str, reason: str) -> None:
    report = parse_kucoin({"code": "200000", "data": {**KUCOIN["data"], "permission": permission}})
    assert report.verdict is Verdict.REFUSED and reason in report.reasons


def test_kucoin_whitelist_missing_the_egress_ip_is_flagged() -> None:
    report = parse_kucoin(KUCOIN, egress_ip="192.0.2.1")
    assert report.verdict is Verdict.FLAGGED and "192.0.2.1" in report.reasons[0]


def test_kucoin_without_whitelist_is_flagged() -> None:
    report = parse_kucoin({"code": "200000", "data": {**KUCOIN["data"], "ipWhitelist": ""}})
    assert report.verdict is Verdict.FLAGGED and report.ip_restricted is False


# GET /api/v5/account/config
OKX = {"code": "0", "msg": "", "data": [{"acctLv": "2", "autoLoan": False, "ctIsoMode": "automatic",
                                        "greeksType": "PA", "level": "Lv1", "levelTmp": "", "mgnIsoMode": "automatic",
                                        "posMode": "long_short_mode", "spotOffsetType": "", "uid": "44705892343619584",
                                        "label": "sealbot", "roleType": "0", "traderInsts": [], "opAuth": "0",
                                        "ip": "203.0.113.7", "perm": "read_only,trade",
                                        "mainUid": "44705892343619584"}]}


def test_okx_trade_key_with_ip_is_ok_and_withdraw_is_refused() -> None:
    assert parse_okx(OKX).verdict is Verdict.OK
    withdraw = {**OKX, "data": [{**OKX["data"][0], "perm": "read_only,withdraw,trade"}]}
    assert parse_okx(withdraw).verdict is Verdict.REFUSED
    no_ip = {**OKX, "data": [{**OKX["data"][0], "ip": ""}]}
    assert parse_okx(no_ip).verdict is Verdict.FLAGGED


# GET /v5/user/query-api
BYBIT = {"retCode": 0, "retMsg": "", "result": {
    "id": "13770661", "note": "sealbot", "apiKey": "XXXXXX", "readOnly": 0, "secret": "",
    "permissions": {"ContractTrade": [], "Spot": ["SpotTrade"], "Wallet": [], "Options": [], "Derivatives": [],
                    "CopyTrading": [], "BlockTrade": [], "Exchange": [], "NFT": [], "Affiliate": []},
    "ips": ["203.0.113.7"], "type": 1, "deadlineDay": 83, "expiredAt": "2023-12-22T07:20:25Z",
    "createdAt": "2022-10-16T02:24:40Z", "unified": 0, "uta": 0, "userID": 24617703, "inviterID": 0,
    "vipLevel": "No VIP", "mktMakerLevel": "0", "affiliateID": 0}, "retExtInfo": {}, "time": 1697525990798}


def test_bybit_parser() -> None:
    assert parse_bybit(BYBIT).verdict is Verdict.OK
    wallet = {**BYBIT, "result": {**BYBIT["result"], "permissions": {**BYBIT["result"]["permissions"],
                                                                     "Wallet": ["AccountTransfer", "Withdraw"]}}}
    report = parse_bybit(wallet)
    assert report.verdict is Verdict.REFUSED and WITHDRAW in report.reasons and TRANSFER in report.reasons
    any_ip = {**BYBIT, "result": {**BYBIT["result"], "ips": ["*"]}}
    assert parse_bybit(any_ip).ip_restricted is False
    read_only = {**BYBIT, "result": {**BYBIT["result"], "readOnly": 1}}
    assert parse_bybit(read_only).reasons == (NO_TRADE,)


# POST /0/private/GetApiKeyInfo
KRAKEN = {"error": [], "result": {
    "apiKeyName": "my-api-key", "apiKey": "4/SDrDBcOOPnm3nPlNfE", "nonce": "1772627060997", "nonceWindow": 0,
    "permissions": ["query-funds", "query-open-trades", "modify-trades"], "iban": "AA88 N84G WOAK NMOI",
    "validUntil": "0", "queryFrom": "0", "queryTo": "0", "createdTime": "1772542900",
    "modifiedTime": "1772543095", "ipAllowlist": [], "lastUsed": "1772627061"}}


def test_kraken_parser() -> None:
    report = parse_kraken(KRAKEN, IpPolicy.STRICT)
    assert report.can_trade is True and report.can_withdraw is False
    assert report.verdict is Verdict.REFUSED and report.ip_restricted is False  # strict: no allow-list
    withdraw = {"error": [], "result": {**KRAKEN["result"], "permissions": ["withdraw-funds", "modify-trades"],
                                        "ipAllowlist": ["203.0.113.7"]}}
    assert parse_kraken(withdraw).reasons == (WITHDRAW,)


async def test_binance_check_runs_through_the_signed_endpoint(signer: FakeSigner) -> None:
    venue = CcxtVenue("binance", signer=signer, handle=FakeHandle("a"), request_type=FakeSignRequest,
                      urls={"api_base": "http://127.0.0.1:9"}, egress_ip="203.0.113.7")
    http = FakeHttp({"/sapi/v1/account/apiRestrictions": {**BINANCE_SAFE, "enableWithdrawals": True}})
    venue.exchange.fetch = http
    try:
        report = await venue.check_permissions()
    finally:
        await venue.close()
    assert report.verdict is Verdict.REFUSED and report.egress_ip == "203.0.113.7"
    assert http.calls[0][1].startswith("http://127.0.0.1:9/sapi/v1/account/apiRestrictions?")
    assert report.to_dict()["verdict"] == "refused"


async def test_an_exchange_without_a_check_is_reported_as_unchecked() -> None:
    venue = CcxtVenue("bitstamp")
    try:
        report = await check_exchange_permissions(venue)
    finally:
        await venue.close()
    assert report.checked is False and report.reasons == (NOT_REPORTED,)
    assert report.verdict is Verdict.FLAGGED


async def test_check_key_without_signer_support_says_it_could_not_check(signer: FakeSigner) -> None:
    report = await check_key("okx", signer, FakeHandle("a"))
    assert report.checked is False and "could not be checked" in report.reasons[0]
    assert signer.requests == []


def test_stored_raw_body_drops_the_echoed_api_key() -> None:
    report = parse_bybit(BYBIT)
    assert "apiKey" not in report.raw["result"] and "secret" not in report.raw["result"]
    assert report.raw["result"]["ips"] == ["203.0.113.7"]
    assert "apiKey" not in parse_kucoin(KUCOIN).raw["data"]


async def test_bybit_check_is_signed_by_the_signer(signer: FakeSigner) -> None:
    venue = CcxtVenue("bybit", signer=signer, handle=FakeHandle("a"), request_type=FakeSignRequest,
                      urls={"api_base": "http://127.0.0.1:9"})
    http = FakeHttp({"/v5/user/query-api": BYBIT})
    venue.exchange.fetch = http
    try:
        report = await venue.check_permissions()
    finally:
        await venue.close()
    assert report.verdict is Verdict.OK
    _, url, headers, _ = http.calls[0]
    assert url.rstrip("?") == "http://127.0.0.1:9/v5/user/query-api"
    signed = headers["X-BAPI-TIMESTAMP"] + "test-key-id" + headers["X-BAPI-RECV-WINDOW"]
    expected = hmac.new(signer.secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
    assert headers["X-BAPI-SIGN"] == expected and headers["X-BAPI-API-KEY"] == "test-key-id"


@pytest.mark.parametrize(("policy", "verdict"), [(IpPolicy.STRICT, Verdict.REFUSED), (IpPolicy.WARN, Verdict.FLAGGED)])
def test_binance_answer_without_ip_restrict_is_not_taken_as_restricted(policy: IpPolicy, verdict: Verdict) -> None:
    body = {k: v for k, v in BINANCE_SAFE.items() if k != "ipRestrict"}
    report = parse_binance(body, policy=policy)
    assert report.verdict is verdict and report.ip_restricted is None
    assert any("did not say whether the key is restricted" in r for r in report.reasons)
