"""What an API key may do, asked of the exchange itself, and sealbot's verdict on it.

A key that can move funds off the account (withdrawals, internal or universal
transfers) is refused: a leaked trading key is then worth little to a thief. A key
that cannot trade spot is refused too (it would fail at the first order, so say so at
link time). A key without an IP whitelist is flagged, or refused under the ``strict``
policy: with a whitelist a leaked key is useless from anywhere else.

Each exchange reports this differently; one parser per exchange turns its documented
response body into a ``PermissionReport``:

=========  ===================================  ==========================================
exchange   endpoint (ccxt implicit method)      fields used
=========  ===================================  ==========================================
binance    GET /sapi/v1/account/apiRestrictions enableWithdrawals, enableInternalTransfer,
           (sapi_get_account_apirestrictions)   permitsUniversalTransfer, ipRestrict,
                                                enableSpotAndMarginTrading
kucoin     GET /api/v1/user/api-key             data.permission ("General,Spot,..."),
           (private_get_user_api_key)           data.ipWhitelist
okx        GET /api/v5/account/config           data[0].perm ("read_only,trade,withdraw"),
           (private_get_account_config)         data[0].ip
bybit      GET /v5/user/query-api               result.readOnly, result.permissions.Spot,
           (private_get_v5_user_query_api)      result.permissions.Wallet, result.ips
kraken     POST /0/private/GetApiKeyInfo        result.permissions, result.ipAllowlist
           (private_post_getapikeyinfo)
=========  ===================================  ==========================================

Any other exchange yields ``checked=False`` and the reason "the exchange does not
report key permissions".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sealbot.venues.base import NOT_REPORTED, IpPolicy, PermissionReport, Verdict

if TYPE_CHECKING:
    from sealbot.venues.ccxt_venue import CcxtVenue

WITHDRAW = "the key can withdraw funds: create a key without the withdrawal permission"
WITHDRAW_UNKNOWN = ("the exchange did not say whether the key can withdraw, so sealbot cannot confirm it cannot: "
                    "try again later")
TRANSFER = "the key can transfer funds between accounts: create a key without transfer permissions"
NO_TRADE = "the key cannot trade spot: enable spot trading for it on the exchange"
IP_UNKNOWN = "the exchange did not say whether the key is restricted to IP addresses: check it is, on the exchange"


def _no_ip(egress_ip: str | None) -> str:
    where = f" to {egress_ip}" if egress_ip else " to the address sealbot connects from"
    return f"the key has no IP restriction: restrict it{where}"


def judge(
    exchange: str,
    *,
    can_trade: bool | None,
    can_withdraw: bool | None,
    can_transfer: bool | None,
    ip_restricted: bool | None,
    ip_whitelist: tuple[str, ...] = (),
    policy: IpPolicy = IpPolicy.WARN,
    egress_ip: str | None = None,
    notes: tuple[str, ...] = (),
    raw: Mapping[str, Any] | None = None,
) -> PermissionReport:
    """The verdict for capabilities an exchange reported (``None``: not reported). Every
    parser reads the withdrawal permission from a field its exchange always sends, so a
    ``None`` there means an answer of an unexpected shape: refused, not passed as safe."""
    refusals: list[str] = []
    flags: list[str] = []
    if can_withdraw:
        refusals.append(WITHDRAW)
    elif can_withdraw is None:
        refusals.append(WITHDRAW_UNKNOWN)
    if can_transfer:
        refusals.append(TRANSFER)
    if can_trade is False:
        refusals.append(NO_TRADE)
    if ip_restricted is False:
        (refusals if policy is IpPolicy.STRICT else flags).append(_no_ip(egress_ip))
    elif ip_restricted is None:  # not said: not known to be restricted, so not passed as restricted
        (refusals if policy is IpPolicy.STRICT else flags).append(IP_UNKNOWN)
    if egress_ip and ip_restricted and ip_whitelist and egress_ip not in ip_whitelist:
        flags.append(f"the key's IP whitelist does not include {egress_ip}, the address sealbot "
                     "connects from: the exchange will refuse its requests")
    verdict = Verdict.REFUSED if refusals else Verdict.FLAGGED if flags else Verdict.OK
    return PermissionReport(
        exchange=exchange, checked=True, verdict=verdict, reasons=(*refusals, *flags, *notes),
        can_trade=can_trade, can_withdraw=can_withdraw, can_transfer=can_transfer,
        ip_restricted=ip_restricted, ip_whitelist=ip_whitelist, egress_ip=egress_ip,
        raw=_scrub(dict(raw or {})),
    )


_CREDENTIAL_FIELDS = frozenset({"apikey", "api_key", "secret", "secretkey", "passphrase"})


def _scrub(node: Any) -> Any:
    """The response body without credential fields (Bybit and KuCoin echo the API key,
    which custody treats as half of the credential), safe to store and show."""
    if isinstance(node, Mapping):
        return {k: _scrub(v) for k, v in node.items() if str(k).lower() not in _CREDENTIAL_FIELDS}
    if isinstance(node, list):
        return [_scrub(item) for item in node]
    return node


def not_checked(exchange: str, egress_ip: str | None = None, reason: str = NOT_REPORTED) -> PermissionReport:
    """A report for an exchange that cannot tell what a key may do."""
    return PermissionReport(exchange=exchange, checked=False, verdict=Verdict.FLAGGED,
                            reasons=(reason,), egress_ip=egress_ip)


def _flag(value: Any) -> bool | None:
    """Exchanges write booleans as true/"true"/1/"1"."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _split(value: Any) -> tuple[str, ...]:
    """A list, or comma-separated text, of names or addresses."""
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def parse_binance(body: Mapping[str, Any], policy: IpPolicy = IpPolicy.WARN,
                  egress_ip: str | None = None) -> PermissionReport:
    transfer = _flag(body.get("enableInternalTransfer")) or _flag(body.get("permitsUniversalTransfer"))
    ip_restricted = _flag(body.get("ipRestrict"))
    notes: tuple[str, ...] = ()
    if ip_restricted is False and body.get("tradingAuthorityExpirationTime"):
        notes = ("Binance removes trading from keys without an IP restriction when "
                 "tradingAuthorityExpirationTime passes",)
    return judge(
        "binance", can_trade=_flag(body.get("enableSpotAndMarginTrading")),
        can_withdraw=_flag(body.get("enableWithdrawals")),
        can_transfer=transfer if transfer is not None else None,
        ip_restricted=ip_restricted, policy=policy, egress_ip=egress_ip, notes=notes, raw=body,
    )


def parse_kucoin(body: Mapping[str, Any], policy: IpPolicy = IpPolicy.WARN,
                 egress_ip: str | None = None) -> PermissionReport:
    data = body.get("data", body) or {}
    perms = {p.lower() for p in _split(data.get("permission", data.get("permissions")))}
    whitelist = _split(data.get("ipWhitelist"))
    return judge(
        "kucoin", can_trade="spot" in perms or "trade" in perms,
        can_withdraw=any(p.startswith("withdraw") for p in perms),
        can_transfer="transfer" in perms or "innertransfer" in perms,
        ip_restricted=bool(whitelist), ip_whitelist=whitelist, policy=policy, egress_ip=egress_ip, raw=body,
    )


def parse_okx(body: Mapping[str, Any], policy: IpPolicy = IpPolicy.WARN,
              egress_ip: str | None = None) -> PermissionReport:
    rows = body.get("data") or [{}]
    data = rows[0] if isinstance(rows, list) else rows
    perms = {p.lower() for p in _split(data.get("perm"))}
    whitelist = _split(data.get("ip"))
    return judge(
        "okx", can_trade="trade" in perms, can_withdraw="withdraw" in perms, can_transfer=None,
        ip_restricted=bool(whitelist), ip_whitelist=whitelist, policy=policy, egress_ip=egress_ip, raw=body,
    )


def parse_bybit(body: Mapping[str, Any], policy: IpPolicy = IpPolicy.WARN,
                egress_ip: str | None = None) -> PermissionReport:
    data = body.get("result", body) or {}
    perms = data.get("permissions") or {}
    wallet = set(_split(perms.get("Wallet")))
    spot = set(_split(perms.get("Spot")))
    read_only = str(data.get("readOnly", "0")) == "1"
    ips = tuple(ip for ip in _split(data.get("ips")) if ip != "*")  # ["*"]: any address
    return judge(
        "bybit", can_trade=not read_only and "SpotTrade" in spot, can_withdraw="Withdraw" in wallet,
        can_transfer=bool(wallet & {"AccountTransfer", "SubMemberTransfer", "SubMemberTransferList"}),
        ip_restricted=bool(ips), ip_whitelist=ips, policy=policy, egress_ip=egress_ip, raw=body,
    )


def parse_kraken(body: Mapping[str, Any], policy: IpPolicy = IpPolicy.WARN,
                 egress_ip: str | None = None) -> PermissionReport:
    data = body.get("result", body) or {}
    perms = {p.lower() for p in _split(data.get("permissions"))}
    whitelist = _split(data.get("ipAllowlist"))
    return judge(
        "kraken", can_trade="modify-trades" in perms, can_withdraw="withdraw-funds" in perms,
        can_transfer=None, ip_restricted=bool(whitelist), ip_whitelist=whitelist, policy=policy,
        egress_ip=egress_ip, raw=body,
    )


Parser = Callable[[Mapping[str, Any], IpPolicy, "str | None"], PermissionReport]

# exchange id -> (ccxt implicit method that fetches the key's permissions, parser)
CHECKS: dict[str, tuple[str, Parser]] = {
    "binance": ("sapi_get_account_apirestrictions", parse_binance),
    "kucoin": ("private_get_user_api_key", parse_kucoin),
    "okx": ("private_get_account_config", parse_okx),
    "bybit": ("private_get_v5_user_query_api", parse_bybit),
    "kraken": ("private_post_getapikeyinfo", parse_kraken),
}


async def check_exchange_permissions(venue: CcxtVenue, policy: IpPolicy = IpPolicy.WARN,
                                     egress_ip: str | None = None) -> PermissionReport:
    """Ask the exchange behind ``venue`` what its key may do. Errors (bad key, IP not
    whitelisted) propagate as venue errors: a key that cannot even ask is not linked."""
    entry = CHECKS.get(venue.name)
    if entry is None:
        return not_checked(venue.name, egress_ip)
    method_name, parser = entry
    method = getattr(venue.exchange, method_name, None)
    if method is None:
        return not_checked(venue.name, egress_ip, "could not be checked: this ccxt version has no "
                                                   f"{method_name}")
    body = await venue._call(method)
    return parser(body, policy, egress_ip)


async def check_key(exchange_id: str, signer: Any, handle: Any, *, urls: dict[str, Any] | None = None,
                    policy: IpPolicy = IpPolicy.WARN, egress_ip: str | None = None) -> PermissionReport:
    """Open a venue for one key, ask for its permissions, close it: what linking an
    account and the periodic re-check call. For an exchange without a permission
    endpoint no request is made and the report says it could not be checked."""
    from sealbot.venues.ccxt_venue import CcxtVenue
    from sealbot.venues.signing import SIGNER_EXCHANGES

    if exchange_id not in CHECKS:
        return not_checked(exchange_id, egress_ip)
    if exchange_id not in SIGNER_EXCHANGES:
        return not_checked(exchange_id, egress_ip, "could not be checked: requests to this exchange cannot be "
                                                   "signed through the custody signer yet")
    venue = CcxtVenue(exchange_id, signer=signer, handle=handle, urls=urls, ip_policy=policy, egress_ip=egress_ip)
    try:
        return await venue.check_permissions()
    finally:
        await venue.close()
