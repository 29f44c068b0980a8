"""A small Python client of the admin API, for tests, the demo and ``sealbot simex key create``."""

from __future__ import annotations

from typing import Any

import httpx


class SimexAdminError(RuntimeError):
    """The admin API refused a call; the message is its reason."""


class SimexAdmin:
    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/") + "/simex/admin",
                                  headers={"Authorization": f"Bearer {token}"}, timeout=timeout)

    def __repr__(self) -> str:
        return f"SimexAdmin({self._http.base_url!s})"

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, path, json=body, params=params)
        if response.status_code >= 400:
            try:
                reason = response.json().get("error")
            except ValueError:  # not simex answering (another server on that URL)
                reason = response.reason_phrase
            raise SimexAdminError(f"{method} {path}: {response.status_code} {reason}")
        return response.json()

    def create_account(self, name: str, balances: dict[str, str] | None = None, maker_fee: str | None = None,
                       taker_fee: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "balances": {k: str(v) for k, v in (balances or {}).items()}}
        if maker_fee is not None:
            body["maker_fee"] = str(maker_fee)
        if taker_fee is not None:
            body["taker_fee"] = str(taker_fee)
        return dict(self._call("POST", "/accounts", body))

    def account(self, account_id: int) -> dict[str, Any]:
        return dict(self._call("GET", f"/accounts/{account_id}"))

    def set_balances(self, account_id: int, balances: dict[str, str]) -> dict[str, Any]:
        return dict(self._call("PUT", f"/accounts/{account_id}/balances", {k: str(v) for k, v in balances.items()}))

    def create_key(self, account_id: int, permissions: list[str] | None = None,
                   ip_whitelist: list[str] | None = None, public_key_pem: str | None = None,
                   passphrase: str | None = None, label: str = "") -> dict[str, Any]:
        """Returns ``key`` and, for an HMAC key, its ``secret`` (shown this once)."""
        return dict(self._call("POST", "/keys", {"account_id": account_id, "permissions": permissions,
                                                 "ip_whitelist": ip_whitelist or [],
                                                 "public_key_pem": public_key_pem, "passphrase": passphrase,
                                                 "label": label}))

    def update_key(self, key: str, permissions: list[str] | None = None, ip_whitelist: list[str] | None = None,
                   enabled: bool | None = None) -> dict[str, Any]:
        return dict(self._call("PATCH", f"/keys/{key}", {"permissions": permissions,
                                                         "ip_whitelist": ip_whitelist, "enabled": enabled}))

    def clock(self) -> dict[str, Any]:
        return dict(self._call("GET", "/clock"))

    def set_clock(self, set_ms: int | None = None, advance_seconds: float | None = None,
                  speed: float | None = None) -> dict[str, Any]:
        return dict(self._call("POST", "/clock", {"set_ms": set_ms, "advance_seconds": advance_seconds,
                                                  "speed": speed}))

    def add_fault(self, kind: str, key: str | None = None, path_prefix: str | None = None,
                  value: str | float | None = None, times: int | None = None) -> dict[str, Any]:
        return dict(self._call("POST", "/faults", {"kind": kind, "key": key, "path_prefix": path_prefix,
                                                   "value": None if value is None else str(value), "times": times}))

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def orders(self, account_id: int | None = None) -> list[dict[str, Any]]:
        params = {"account_id": account_id} if account_id is not None else None
        return list(self._call("GET", "/orders", params=params))

    def markets(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/markets"))

    def requests(self) -> list[dict[str, Any]]:
        """Requests served per method and path since the start or ``reset_requests``:
        ``[{"method", "path", "count", "weight"}]``."""
        return list(self._call("GET", "/requests"))

    def request_count(self, path: str, method: str = "GET") -> int:
        return sum(int(r["count"]) for r in self.requests() if r["path"] == path and r["method"] == method)

    def reset_requests(self) -> None:
        self._call("DELETE", "/requests")

    def set_ratelimit(self, limit: int | None = None, ban_after: int | None = None,
                      ban_seconds: int | None = None, reset: bool = False,
                      kucoin_limit: int | None = None) -> dict[str, Any]:
        return dict(self._call("POST", "/ratelimit", {"limit": limit, "ban_after": ban_after,
                                                      "ban_seconds": ban_seconds, "reset": reset,
                                                      "kucoin_limit": kucoin_limit}))


def create_key_cli(base_url: str, admin_token: str, account_id: int | None = None, account_name: str = "user",
                   balances: dict[str, str] | None = None, permissions: list[str] | None = None,
                   ip_whitelist: list[str] | None = None, public_key_pem: str | None = None,
                   passphrase: str | None = None) -> dict[str, Any]:
    """``sealbot simex key create``: make (or reuse) an account and give it a key.

    Returns ``{"account_id", "key", "secret", "kind", ...}``; the caller prints it once.
    A simex that cannot be reached is a ``SimexAdminError`` naming the URL, like a
    refused call (the command line prints either as one line), never the admin token.
    """
    admin = SimexAdmin(base_url, admin_token)
    try:
        if account_id is None:
            account_id = int(admin.create_account(account_name, balances)["id"])
        elif balances:
            admin.set_balances(account_id, balances)
        return admin.create_key(account_id, permissions, ip_whitelist, public_key_pem, passphrase)
    except httpx.TransportError as exc:
        raise SimexAdminError(f"cannot reach {base_url} ({type(exc).__name__}: {exc})") from None
    finally:
        admin.close()
