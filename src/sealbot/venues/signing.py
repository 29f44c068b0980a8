"""ccxt exchange classes whose credentials live in the custody signer, not in the object.

ccxt signs a private request inside ``Exchange.sign()`` with ``self.secret``. Here the
exchange object never holds a secret at all:

* ``apiKey`` is the (non-secret) key id, from ``signer.api_key(handle)``;
* ``secret`` holds an opaque marker (``SECRET_MARKER``, or ``ED25519_MARKER`` for an
  Ed25519 key: Binance picks Ed25519 when the secret contains ``PRIVATE KEY`` and is
  at most 120 characters long, so the marker is shaped to steer it there);
* ``password`` (KuCoin's passphrase) holds ``PASSPHRASE_MARKER``.

``sign()`` is overridden to capture ``(path, method, params)`` of the request being
signed; ``hmac()`` and ``eddsa()`` are overridden so that a call keyed with the marker
goes to ``signer.sign(handle, payload, SignRequest(exchange, method, path, params),
encoding)``, and KuCoin's passphrase HMAC (``hmac(password, secret)``) goes to
``signer.sign_passphrase(handle)``. Any other HMAC (ccxt's own KuCoin broker
signature, keyed with ccxt's public partner key) is computed as usual.

``nonce()`` is overridden so that a request signed inside ``pinned_time(at_ms)`` carries
``at_ms`` (on the exchange's clock) rather than the time it happens to be signed: see
``pinned_time``.

Which exchanges can sign this way is a property of ccxt's ``sign()``: it must HMAC-SHA256
with the raw secret (or Ed25519), and send nothing secret in clear. Binance, KuCoin
and Bybit do; OKX sends its passphrase in clear and Kraken HMACs with a base64-decoded
secret and SHA-512, so they are refused (``SIGNER_EXCHANGES``).

``create_signed_stream_exchange`` builds the ccxt.pro (websocket) twin the same way, for
the user-data stream (``engine.user_stream``). ccxt.pro's Binance signs WebSocket API
requests in ``sign_params()`` (``apiKey`` and ``timestamp`` sorted into a query string,
HMAC'd like a REST request), not in ``sign()``; that is wrapped too, so the signer is
told ``SignRequest(exchange, "WS", "ws-api/v3", params)`` and judges the payload (see
``custody.policy``: only the subscription's shape is signed for the WebSocket API).
ccxt.pro's KuCoin signs nothing over the websocket: its private channel is opened with a
token from ``POST /api/v1/bullet-private``, a REST request signed in ``sign()`` like any
other, so the signer sees ``SignRequest("kucoin", "POST", "bullet-private", {})``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any, Final, Literal, Protocol
from urllib.parse import urlsplit

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
from ccxt.base.exchange import Exchange as _SyncBase

from sealbot.venues.errors import VenueError
from sealbot.venues.throttle import throttle_config

SECRET_MARKER: Final = "sealbot:signer-held-secret"
ED25519_MARKER: Final = "-----BEGIN PRIVATE KEY-----sealbot:signer-held-----END PRIVATE KEY-----"
PASSPHRASE_MARKER: Final = "sealbot:signer-held-passphrase"
SIGNER_EXCHANGES: Final = frozenset({"binance", "kucoin", "bybit"})
# ccxt.pro classes whose private stream signs through the signer: Binance's WebSocket API
# subscription; KuCoin's bullet-private token request (a REST call, signed in sign())
STREAM_EXCHANGES: Final = frozenset({"binance", "kucoin"})
WS_METHOD: Final = "WS"  # SignRequest.method of a WebSocket API request (no HTTP verb)
PASSPHRASE_EXCHANGES: Final = frozenset({"kucoin"})

Encoding = Literal["hex", "base64"]

_PINNED_MS: ContextVar[int | None] = ContextVar("sealbot_pinned_ms", default=None)


@contextmanager
def pinned_time(at_ms: int) -> Iterator[None]:
    """Sign every request this task makes inside the block with ``at_ms`` (epoch ms on
    this host's clock) instead of the moment ccxt signs it.

    ccxt stamps a private request with ``nonce()`` when it signs it, just before it goes
    out, so a request delayed on our side (a worker paused between journalling an order
    and sending it) is fresh in the exchange's eyes however late it is. Pinned to the
    time the attempt was journalled, the exchange refuses it once its receive window has
    passed. Binance and KuCoin both take ``nonce()`` as the request time and compute it
    as this host's milliseconds minus ``options["timeDifference"]`` (what ccxt measured
    with ``adjustForTimeDifference``, else 0); the pinned time is converted the same way,
    so it lands on the exchange's clock. A context variable, so concurrent requests of
    other tasks on the same exchange object are signed as usual."""
    token = _PINNED_MS.set(at_ms)
    try:
        yield
    finally:
        _PINNED_MS.reset(token)


class SignerLike(Protocol):
    """The part of custody's ``Signer`` a venue uses; nothing here returns a secret."""

    def api_key(self, handle: Any) -> str: ...

    def sign(self, handle: Any, payload: bytes, request: Any, encoding: Encoding) -> str: ...

    def sign_passphrase(self, handle: Any) -> str: ...


class _SignerBound:
    """Mixed in front of a ccxt exchange class; see the module docstring."""

    id: str
    secret: str
    password: str
    _sb_signer: SignerLike
    _sb_handle: Any
    _sb_request: Any
    _sb_request_type: Callable[..., Any]

    def sign(self, path: str, api: Any = "public", method: str = "GET",
             params: dict[str, Any] | None = None) -> Any:
        params = {} if params is None else params
        self._sb_request = self._sb_request_type(exchange=self.id, method=method, path=self._url_path(api, path),
                                                 params={str(k): str(v) for k, v in params.items()})
        try:
            return super().sign(path, api, method, params)  # type: ignore[misc]
        finally:
            self._sb_request = None

    def nonce(self) -> Any:
        pinned = _PINNED_MS.get()
        if pinned is None:
            return super().nonce()  # type: ignore[misc]
        difference = getattr(self, "options", {}).get("timeDifference")
        return pinned - int(difference or 0)

    def _url_path(self, api: Any, path: str) -> str:
        """The request's URL path as far as the API group's base URL tells it (Binance:
        ``api/v3/order``; KuCoin adds its ``/api/v1`` inside ``sign()``, so there it is
        the ccxt path, and the signed payload carries the full endpoint)."""
        group = api[0] if isinstance(api, list | tuple) and api else api
        bases = getattr(self, "urls", {}).get("api")
        base = bases.get(group) if isinstance(bases, dict) else None
        prefix = urlsplit(base).path.strip("/") if isinstance(base, str) else ""
        return f"{prefix}/{path}" if prefix else path

    def hmac(self, request: bytes, secret: bytes, algorithm: Callable[..., Any] = hashlib.sha256,
             digest: str = "hex") -> Any:
        if secret != SECRET_MARKER.encode():
            return _SyncBase.hmac(request, secret, algorithm, digest)
        if algorithm is not hashlib.sha256 or digest not in ("hex", "base64"):
            raise VenueError(self.id, "this exchange signs in a way the signer does not support")
        if request == PASSPHRASE_MARKER.encode():
            return self._sb_signer.sign_passphrase(self._sb_handle)
        return self._sb_signer.sign(self._sb_handle, request, self._current_request(), digest)  # type: ignore[arg-type]

    def eddsa(self, request: bytes, secret: Any, curve: str = "ed25519", url_encode: bool = False) -> str:
        if secret not in (ED25519_MARKER, ED25519_MARKER.encode()):
            raise VenueError(self.id, "an Ed25519 signature was asked for a key the signer does not hold")
        signature = self._sb_signer.sign(self._sb_handle, request, self._current_request(), "base64")
        if url_encode:
            signature = signature.replace("+", "-").replace("/", "_").rstrip("=")
        return signature

    def rsa(self, *args: Any, **kwargs: Any) -> str:
        raise VenueError(self.id, "RSA keys are not supported by the signer")

    def _current_request(self) -> Any:
        if self._sb_request is None:  # ccxt signed outside sign(): nothing to show the policy
            return self._sb_request_type(exchange=self.id, method="", path="", params={})
        return self._sb_request

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} (credentials held by the signer)>"


class _WsSignerBound(_SignerBound):
    """``_SignerBound`` for a ccxt.pro class: WebSocket API requests are signed in
    ``sign_params()``, which is wrapped like ``sign()`` to tell the signer what it signs."""

    urls: dict[str, Any]

    def sign_params(self, params: dict[str, Any] | None = None) -> Any:
        params = {} if params is None else params
        self._sb_request = self._sb_request_type(exchange=self.id, method=WS_METHOD, path=self._ws_api_path(),
                                                 params={str(k): str(v) for k, v in params.items()})
        try:
            return super().sign_params(params)  # type: ignore[misc]
        finally:
            self._sb_request = None

    def _ws_api_path(self) -> str:
        ws = self.urls.get("api", {}).get("ws", {})
        url = ws.get("ws-api", {}).get("spot") if isinstance(ws, dict) else None
        return urlsplit(url).path.strip("/") if isinstance(url, str) else "ws-api"


@cache
def signed_stream_class(exchange_id: str) -> type[Any]:
    """The ccxt.pro class for ``exchange_id`` with signing routed to the signer."""
    base = getattr(ccxt_pro, exchange_id, None)
    if exchange_id not in STREAM_EXCHANGES or base is None or not isinstance(base, type):
        raise VenueError(exchange_id, "no private stream signed through the custody signer for this exchange "
                                      f"(supported: {', '.join(sorted(STREAM_EXCHANGES))})")
    return type(f"SignedStream_{exchange_id}", (_WsSignerBound, base), {})


@cache
def signed_class(exchange_id: str) -> type[Any]:
    """The async ccxt class for ``exchange_id`` with signing routed to the signer."""
    base = getattr(ccxt_async, exchange_id, None)
    if base is None or not isinstance(base, type):
        raise VenueError(exchange_id, "not an exchange ccxt knows")
    return type(f"Signed_{exchange_id}", (_SignerBound, base), {})


def create_signed_exchange(exchange_id: str, signer: SignerLike, handle: Any,
                           config: dict[str, Any] | None = None,
                           request_type: Callable[..., Any] | None = None) -> Any:
    """An async ccxt exchange for ``exchange_id`` that signs through ``signer``.

    ``config`` is passed to ccxt (e.g. ``{"options": {...}}``); credentials in it are
    refused, because credentials come from the signer only. ``request_type`` builds the
    ``SignRequest`` handed to the signer; it defaults to custody's own type.
    """
    if exchange_id not in SIGNER_EXCHANGES:
        raise VenueError(exchange_id, "signing through the custody signer is not supported for this "
                                      f"exchange yet (supported: {', '.join(sorted(SIGNER_EXCHANGES))})")
    config = _checked_config(exchange_id, handle, config)
    for key, value in throttle_config(exchange_id).items():  # throttle on, in the exchange's window
        config.setdefault(key, value)
    return _bind(signed_class(exchange_id)(config), signer, handle, request_type)


def create_signed_stream_exchange(exchange_id: str, signer: SignerLike, handle: Any,
                                  config: dict[str, Any] | None = None,
                                  request_type: Callable[..., Any] | None = None) -> Any:
    """A ccxt.pro exchange for ``exchange_id`` whose private stream subscription is signed
    by ``signer`` (Binance: ``userDataStream.subscribe.signature``); same rules as
    ``create_signed_exchange``. It holds no secret either."""
    signed_stream_class(exchange_id)  # refuses an exchange without one first
    config = _checked_config(exchange_id, handle, config)
    return _bind(signed_stream_class(exchange_id)(config), signer, handle, request_type)


def _checked_config(exchange_id: str, handle: Any, config: dict[str, Any] | None) -> dict[str, Any]:
    config = dict(config or {})
    if {"apiKey", "secret", "password", "privateKey", "uid"} & config.keys():
        raise VenueError(exchange_id, "credentials must come from the signer, not from the venue config")
    if getattr(handle, "algorithm", "hmac-sha256") == "ed25519" and exchange_id != "binance":
        raise VenueError(exchange_id, "Ed25519 keys are supported for Binance only")
    return config


def _bind(exchange: Any, signer: SignerLike, handle: Any, request_type: Callable[..., Any] | None) -> Any:
    """Point ``exchange``'s credentials at the signer: the key id, and markers for the rest."""
    if request_type is None:
        from sealbot.custody.signer import SignRequest

        request_type = SignRequest
    exchange._sb_signer, exchange._sb_handle, exchange._sb_request = signer, handle, None
    exchange._sb_request_type = request_type
    exchange.apiKey = signer.api_key(handle)
    exchange.secret = ED25519_MARKER if getattr(handle, "algorithm", "hmac-sha256") == "ed25519" else SECRET_MARKER
    if exchange.id in PASSPHRASE_EXCHANGES:
        exchange.password = PASSPHRASE_MARKER
    return exchange
