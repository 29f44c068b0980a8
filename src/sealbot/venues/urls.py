"""Point a ccxt exchange at another server (simex, a testnet) by rewriting its URLs.

ccxt keeps every REST base URL in ``exchange.urls['api']``, a dict from an *API
group* name to a base URL; the implicit method ``sapi_get_account_apirestrictions``
belongs to group ``sapi`` and requests ``urls['api']['sapi'] + '/account/apiRestrictions'``.

* Binance (ccxt 4.5): groups carry the version in the path, e.g.
  ``public``/``private`` -> ``https://api.binance.com/api/v3``, ``v1`` -> ``.../api/v1``,
  ``sapi`` -> ``https://api.binance.com/sapi/v1`` (also ``sapiV2``..``sapiV4``), plus the
  futures/options hosts (``fapi*``, ``dapi*``, ``eapi*``, ``papi*``). ``urls['test']``
  holds the testnet's ``public``/``private``/``v1`` (and futures) bases.
* KuCoin: groups are bare hosts and ccxt appends ``/api/v1/...`` (or ``/api/v2``,
  ``/api/v3`` per endpoint) itself: ``public``, ``private``, ``earn``, ``uta*`` ->
  ``https://api.kucoin.com``; ``futuresPublic``/``futuresPrivate`` ->
  ``https://api-futures.kucoin.com``; ``broker``; ``webExchange`` -> ``https://kucoin.com/_api``.
* Bybit: ``https://api.{hostname}``, the placeholder filled from ``exchange.hostname``.

So replacing scheme and host of every group while keeping its path sends each
request to the same path on the new server. Overrides are a plain dict:

``{"api_base": "http://127.0.0.1:8001"}``
    scheme+host(+port) of every group in ``urls['api']`` replaced, paths kept.
``{"api": {"sapi": "http://127.0.0.1:8001/sapi/v1"}}``
    exact base URL per group, applied after ``api_base``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sealbot.domain import InvalidConfig

ALLOWED_KEYS = frozenset({"api_base", "api"})


def _rebase(url: str, base: str) -> str:
    target = urlsplit(base)
    parts = urlsplit(url)
    path = target.path.rstrip("/") + parts.path
    return urlunsplit((target.scheme, target.netloc, path, parts.query, parts.fragment))


def _rebase_tree(node: Any, base: str) -> Any:
    if isinstance(node, str):
        return _rebase(node, base) if "://" in node else node
    if isinstance(node, dict):
        return {key: _rebase_tree(value, base) for key, value in node.items()}
    return node


def validate_overrides(overrides: dict[str, Any]) -> None:
    """Raise ``InvalidConfig`` naming the first key or value that cannot work."""
    unknown = set(overrides) - ALLOWED_KEYS
    if unknown:
        raise InvalidConfig(f"urls.{sorted(unknown)[0]}", f"unknown key; use one of {sorted(ALLOWED_KEYS)}")
    base = overrides.get("api_base")
    if base is not None:
        parts = urlsplit(str(base))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidConfig("urls.api_base", "must be an http(s) URL such as http://127.0.0.1:8001")
    groups = overrides.get("api", {})
    if not isinstance(groups, dict):
        raise InvalidConfig("urls.api", "must map API group names to base URLs")
    for name, url in groups.items():
        if urlsplit(str(url)).scheme not in ("http", "https"):
            raise InvalidConfig(f"urls.api.{name}", "must be an http(s) URL")


def apply_url_overrides(exchange: Any, overrides: dict[str, Any] | None) -> None:
    """Rewrite ``exchange.urls['api']`` in place as ``overrides`` says (see module doc)."""
    if not overrides:
        return
    validate_overrides(overrides)
    api = exchange.urls.get("api")
    base = overrides.get("api_base")
    if base is not None:
        api = _rebase_tree(api, str(base))
    if overrides.get("api"):
        if not isinstance(api, dict):
            api = {}
        api = {**api, **{str(k): str(v) for k, v in overrides["api"].items()}}
    exchange.urls["api"] = api
