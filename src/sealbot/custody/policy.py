"""The signing policy: what the signer refuses to sign, whoever asks.

Checked before every signature, on the bytes about to be signed as well as on what
the caller says the request is, because a compromised caller can lie about the
path or the parameters but cannot make the exchange accept a signature over bytes
it did not send.

Rules:
- ``withdrawal``: any path containing ``withdraw`` or ``transfer`` (case-insensitive),
  the known withdrawal/transfer endpoints of the exchanges sealbot supports, and any
  signed payload that itself mentions them or carries a destination ``address``.
  A payload naming a destination (address, e-mail, sub-account) or moving an
  ``amount`` without being an order (no ``side``) is refused as well: that catches a
  Binance transfer whose caller lies about the path.
- ``allow-list``: a request that places an order — its signed payload has a ``side``,
  or it is a non-GET, non-DELETE request on an order endpoint — must name only pairs
  in the account's allow-list; symbols are read from the signed payload (query string
  or JSON body, batch items included) and from the declared parameters. An order
  request whose symbol cannot be found is refused too. Reads and cancels may name any
  pair.
- ``ws-api``: a payload that carries ``apiKey`` is a Binance WebSocket API request (REST
  sends the key id as a header, never in the signed bytes). The only one sealbot signs is
  the user-data stream subscription (``userDataStream.subscribe.signature``: ``apiKey``,
  ``timestamp``, optionally ``recvWindow``, nothing else), and only with an HMAC key:
  over an Ed25519 key the very same bytes are a valid ``session.logon``, after which the
  session places orders with no signature at all, out of the policy's sight. Every other
  WebSocket API request (``order.place`` and the rest) is refused.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import parse_qsl

from sealbot.custody.errors import SigningRefused

# Known money-moving endpoints (lower case, no leading slash). The substring rule
# below already catches them; the list documents intent and catches renamed forms.
MONEY_MOVING_PATHS: Final = frozenset({
    "sapi/v1/capital/withdraw/apply", "wapi/v3/withdraw.html", "sapi/v1/asset/transfer",
    "sapi/v1/sub-account/transfer/subtouser", "sapi/v1/sub-account/universaltransfer",
    "sapi/v1/futures/transfer", "sapi/v1/margin/transfer", "sapi/v1/localentity/withdraw/apply",
    "api/v1/withdrawals", "api/v3/withdrawals", "api/v2/accounts/inner-transfer", "api/v3/accounts/universal-transfer",
    "api/v1/accounts/sub-transfer", "api/v2/accounts/sub-transfer",
    "api/v5/asset/withdrawal", "api/v5/asset/transfer", "v5/asset/withdraw/create", "v5/asset/transfer/inter-transfer",
    "0/private/withdraw", "0/private/wallettransfer",
})
_MONEY_WORDS: Final = re.compile(r"withdraw|transfer", re.IGNORECASE)
_DESTINATION_KEYS: Final = frozenset({
    "address", "toaddress", "addresstag", "walletaddress", "dest", "destination",
    "toemail", "fromemail", "tosubaccount", "tosubaccountid", "touid", "subuid", "receiver",
})
_FUNDS_KEYS: Final = frozenset({"amount", "amt", "fromamount", "toamount"})  # toamount: Binance convert
_ORDER_KEYS: Final = frozenset({"side"})
_SYMBOL_KEYS: Final = frozenset({"symbol", "instid", "pair", "market", "symbols", "instrument_name"})
_ORDER_PATH: Final = re.compile(r"order", re.IGNORECASE)
_READ_METHODS: Final = frozenset({"GET", "HEAD"})
_SEPARATORS: Final = re.compile(r"[/_\-:\s]")
_WS_API_KEY: Final = "apikey"
_WS_SUBSCRIPTION_KEYS: Final = frozenset({"apikey", "timestamp", "recvwindow"})


def compact_symbol(symbol: str) -> str:
    """``BTC/USDT``, ``BTC-USDT``, ``btcusdt`` -> ``BTCUSDT``: one form to compare exchange symbols."""
    return _SEPARATORS.sub("", symbol).upper()


def check(method: str, path: str, params: Mapping[str, str], payload: bytes,
          allowed_pairs: frozenset[str] | None, algorithm: str = "hmac-sha256") -> None:
    """Raise ``SigningRefused`` when the request must not be signed.

    ``allowed_pairs`` holds compact symbols (``BTCUSDT``); ``None`` means the account
    has no allow-list (every pair may be traded), an empty set means none may.
    ``algorithm`` is the key's (``hmac-sha256`` or ``ed25519``): see the ``ws-api`` rule.
    """
    norm_path = path.strip().lstrip("/").lower().split("?", 1)[0]
    text = payload.decode("utf-8", errors="replace")
    if norm_path in MONEY_MOVING_PATHS or _MONEY_WORDS.search(norm_path):
        raise SigningRefused("withdrawal", f"{method.upper()} {path} moves funds off the account")
    if _MONEY_WORDS.search(text):
        raise SigningRefused("withdrawal", "the signed payload names a withdrawal or transfer")
    fields = _payload_fields(text)
    keys = {key.lower() for key, _ in fields}
    if keys & _DESTINATION_KEYS:
        raise SigningRefused("withdrawal", "the signed payload names a destination (address, e-mail, sub-account)")
    if keys & _FUNDS_KEYS and not keys & _ORDER_KEYS:
        # withdrawals and transfers carry ``amount``/``amt``; spot orders carry quantity/size/qty/sz
        raise SigningRefused("withdrawal", "the signed payload moves an amount of funds and is not an order")
    if _WS_API_KEY in keys:
        _check_ws_api(keys, algorithm)
        return
    verb = method.upper()
    # Order intent is read from the payload (a ``side``), not only from the declared
    # method: Binance does not sign the HTTP method, so a caller could call an order "GET".
    places_order = bool(keys & _ORDER_KEYS) or (
        verb not in _READ_METHODS and verb != "DELETE" and bool(_ORDER_PATH.search(norm_path)))
    if not places_order or allowed_pairs is None:
        return  # reads and cancels may name any pair (cancelling a foreign order must work)
    symbols = {compact_symbol(v) for k, v in fields if k.lower() in _SYMBOL_KEYS for v in _split(v)}
    symbols |= {compact_symbol(v) for k, v in params.items() if k.lower() in _SYMBOL_KEYS for v in _split(v)}
    symbols.discard("")
    if not symbols:
        raise SigningRefused("allow-list", f"{verb} {path} places an order but names no symbol")
    outside = sorted(symbols - allowed_pairs)
    if outside:
        raise SigningRefused("allow-list", f"{', '.join(outside)} not in the account's allow-list")


def _check_ws_api(keys: set[str], algorithm: str) -> None:
    """A WebSocket API request: the user-data subscription, with an HMAC key, or nothing."""
    extra = sorted(keys - _WS_SUBSCRIPTION_KEYS)
    if extra:
        raise SigningRefused("ws-api", "only the user-data stream subscription is signed for the WebSocket API "
                                       f"(this request also carries {', '.join(extra)})")
    if algorithm != "hmac-sha256":
        raise SigningRefused("ws-api", "a WebSocket API subscription is not signed with an Ed25519 key: the same "
                                       "signature would log a session on (session.logon)")


def _split(value: str) -> Iterable[str]:
    # Binance ``symbols=["BTCUSDT","ETHUSDT"]`` and comma lists
    value = value.strip()
    if value.startswith("["):
        try:
            items = json.loads(value)
        except ValueError:
            items = None
        if isinstance(items, list):
            return [str(item) for item in items]
    return [part for part in value.split(",")]


def _payload_fields(text: str) -> list[tuple[str, str]]:
    """Every (key, value) the payload carries: a JSON body anywhere in it (KuCoin, OKX,
    Bybit sign ``timestamp + method + path + body``), and/or a query string (Binance)."""
    fields: list[tuple[str, str]] = []
    brace = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    head = text
    if brace >= 0:
        try:
            body = json.loads(text[brace:])
        except ValueError:
            pass
        else:
            _walk(body, fields)
            head = text[:brace]
    query = head.split("?", 1)[1] if "?" in head else head
    if "=" in query:
        for key, value in parse_qsl(query, keep_blank_values=True):
            fields.append((key, value))
            if value[:1] in ("[", "{"):  # Binance batchOrders=[{...}]: JSON inside a parameter
                with contextlib.suppress(ValueError):
                    _walk(json.loads(value), fields)
    return fields


def _walk(node: object, out: list[tuple[str, str]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict | list):
                _walk(value, out)
            else:
                out.append((str(key), "" if value is None else str(value)))
    elif isinstance(node, list):
        for item in node:
            _walk(item, out)
