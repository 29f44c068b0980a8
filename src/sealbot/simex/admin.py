"""The operator's API under /simex/admin: accounts, keys, balances, clock, faults, limits.

Every call needs the admin token given when simex starts, as
``Authorization: Bearer <token>``. Amounts travel as decimal strings.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbot.simex.clock import ClockError
from sealbot.simex.core import Exchange, Order
from sealbot.simex.errors import SimexError
from sealbot.simex.http import json_response, plain
from sealbot.simex.ratelimit import WeightLimiter

PREFIX = "/simex/admin"


class AdminError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _dec(value: Any, field: str) -> Decimal:
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        raise AdminError(422, f"{field}: not a decimal number") from None
    if not out.is_finite():
        raise AdminError(422, f"{field}: not a finite number")
    return out


def order_view(o: Order) -> dict[str, Any]:
    """An order as the admin API shows it, with its trades (for test assertions)."""
    return {
        "id": o.id, "account_id": o.account_id, "symbol": o.symbol, "side": o.side, "type": o.type, "tif": o.tif,
        "price": None if o.price is None else plain(o.price),
        "stop_price": None if o.stop_price is None else plain(o.stop_price),
        "qty": plain(o.orig_qty), "executed_qty": plain(o.executed_qty), "cum_quote": plain(o.cum_quote),
        "client_id": o.client_id, "status": o.status, "time_ms": o.time_ms, "update_ms": o.update_ms,
        "key": o.key[:8] + "...",
        "trades": [{"id": t.id, "price": plain(t.price), "qty": plain(t.qty), "quote_qty": plain(t.quote_qty),
                    "commission": plain(t.commission), "commission_asset": t.commission_asset,
                    "time_ms": t.time_ms, "is_maker": t.is_maker} for t in o.trades],
    }


class AdminApi:
    def __init__(self, exchange: Exchange, limiter: WeightLimiter, token: str,
                 kucoin_limiter: WeightLimiter | None = None) -> None:
        if len(token) < 8:
            raise ValueError("admin token must be at least 8 characters")
        self.ex, self.limiter, self._token = exchange, limiter, token
        self.kucoin_limiter = kucoin_limiter

    def __repr__(self) -> str:
        return "AdminApi(token=***)"

    def routes(self) -> list[Route]:
        table: list[tuple[str, str, Callable[[dict[str, Any], dict[str, Any]], Any]]] = [
            ("POST", "/accounts", self.create_account),
            ("GET", "/accounts/{account_id:int}", self.get_account),
            ("PUT", "/accounts/{account_id:int}/balances", self.set_balances),
            ("POST", "/keys", self.create_key),
            ("PATCH", "/keys/{key}", self.update_key),
            ("GET", "/clock", self.get_clock),
            ("POST", "/clock", self.set_clock),
            ("GET", "/faults", self.list_faults),
            ("POST", "/faults", self.add_fault),
            ("DELETE", "/faults", self.clear_faults),
            ("GET", "/orders", self.orders),
            ("GET", "/markets", self.markets),
            ("POST", "/ratelimit", self.set_ratelimit),
            ("GET", "/requests", self.requests),
            ("DELETE", "/requests", self.reset_requests),
        ]
        grouped: dict[str, dict[str, Callable[[dict[str, Any], dict[str, Any]], Any]]] = {}
        for method, path, fn in table:
            grouped.setdefault(PREFIX + path, {})[method] = fn
        return [Route(path, self._make(fns), methods=list(fns)) for path, fns in grouped.items()]

    def _make(self, fns: dict[str, Callable[[dict[str, Any], dict[str, Any]], Any]]
              ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            supplied = request.headers.get("authorization", "")
            if not hmac.compare_digest(supplied.encode(), f"Bearer {self._token}".encode()):
                return json_response({"error": "admin token missing or wrong"}, 401)
            body: dict[str, Any] = {}
            if request.method in ("POST", "PUT", "PATCH"):
                raw = await request.body()
                if raw:
                    try:
                        body = await request.json()
                    except ValueError:
                        return json_response({"error": "body must be JSON"}, 400)
            args = {**dict(request.query_params), **request.path_params}
            try:
                result = fns[request.method](args, body)
            except AdminError as err:
                return json_response({"error": err.reason}, err.status)
            except (SimexError, ClockError, ValueError) as err:
                return json_response({"error": str(err)}, 422)
            return json_response(result)
        return endpoint

    # ----- handlers ----------------------------------------------------------------
    def create_account(self, args: dict[str, Any], body: dict[str, Any]) -> Any:
        balances = {str(a): _dec(v, f"balances.{a}") for a, v in (body.get("balances") or {}).items()}
        acct = self.ex.create_account(str(body.get("name", "")), balances,
                                      _dec(body["maker_fee"], "maker_fee") if "maker_fee" in body else None,
                                      _dec(body["taker_fee"], "taker_fee") if "taker_fee" in body else None)
        return self.get_account({"account_id": acct.id}, {})

    def get_account(self, args: dict[str, Any], body: dict[str, Any]) -> Any:
        self.ex.sync()
        acct = self.ex.account(int(args["account_id"]))
        return {"id": acct.id, "name": acct.name, "maker_fee": plain(acct.maker_fee),
                "taker_fee": plain(acct.taker_fee),
                "balances": {a: {"free": plain(b.free), "locked": plain(b.locked)}
                             for a, b in sorted(acct.balances.items())}}

    def set_balances(self, args: dict[str, Any], body: dict[str, Any]) -> Any:
        account_id = int(args["account_id"])
        for asset, amount in body.items():
            self.ex.set_balance(account_id, str(asset), _dec(amount, asset))
        return self.get_account(args, {})

    def create_key(self, args: dict[str, Any], body: dict[str, Any]) -> Any:
        if "account_id" not in body:
            raise AdminError(422, "account_id: required")
        key, secret = self.ex.create_key(int(body["account_id"]), str(body.get("label", "")),
                                         body.get("permissions"), body.get("ip_whitelist") or (),
                                         body.get("public_key_pem"), body.get("passphrase"))
        return {"key": key.key, "secret": secret, "kind": key.kind, "account_id": key.account_id,
                "permissions": sorted(key.permissions), "ip_whitelist": list(key.ip_whitelist)}

    def update_key(self, args: dict[str, Any], body: dict[str, Any]) -> Any:
        key = self.ex.update_key(str(args["key"]), body.get("permissions"), body.get("ip_whitelist"),
                                 body.get("enabled"))
        return {"key": key.key, "kind": key.kind, "permissions": sorted(key.permissions),
                "ip_whitelist": list(key.ip_whitelist), "enabled": key.enabled}

    def get_clock(self, args: dict[str, Any], body: dict[str, Any]) -> Any:
        now = self.ex.sync()
        return {"now_ms": now, "start_ms": self.ex.clock.start_ms, "speed": self.ex.clock.speed}

    def set_clock(self, args: dict[str, Any], body: dict[str, Any]) -> Any:
        with self.ex.lock:
            self.ex.sync()
            if body.get("set_ms") is not None:
                self.ex.clock.set(int(body["set_ms"]))
            if body.get("advance_seconds") is not None:
                self.ex.clock.advance(float(body["advance_seconds"]))
            if body.get("speed") is not None:
                self.ex.clock.set_speed(float(body["speed"]))
        return self.get_clock(args, body)

    def list_faults(self, args: dict[str, Any], body: dict[str, Any]) -> Any:
        return [r.as_dict() for r in self.ex.faults.rules()]

    def add_fault(self, args: dict[str, Any], body: dict[str, Any]) -> Any:
        rule = self.ex.faults.add(str(body.get("kind")), body.get("key"), body.get("path_prefix"),
                                  body.get("value"), body.get("times"))
        return rule.as_dict()

    def clear_faults(self, args: dict[str, Any], body: dict[str, Any]) -> Any:
        self.ex.faults.clear(int(args["id"]) if "id" in args else None)
        return self.list_faults(args, body)

    def orders(self, args: dict[str, Any], body: dict[str, Any]) -> Any:
        account = int(args["account_id"]) if "account_id" in args else None
        return [order_view(o) for o in self.ex.all_orders(account)]

    def markets(self, args: dict[str, Any], body: dict[str, Any]) -> Any:
        self.ex.sync()
        out = []
        for symbol, m in self.ex.markets.items():
            bid, ask = self.ex.book(symbol)
            out.append({"symbol": symbol, "base": m.base, "quote": m.quote, "price": plain(self.ex.price(symbol)),
                        "bid": plain(bid), "ask": plain(ask), "tick": plain(m.tick), "step": plain(m.step),
                        "min_notional": plain(m.min_notional), "data_file": m.data_file})
        return out

    def requests(self, args: dict[str, Any], body: dict[str, Any]) -> Any:
        return self.ex.requests.rows()

    def reset_requests(self, args: dict[str, Any], body: dict[str, Any]) -> Any:
        self.ex.requests.reset()
        return []

    def set_ratelimit(self, args: dict[str, Any], body: dict[str, Any]) -> Any:
        for name in ("limit", "ban_after", "ban_seconds"):
            if body.get(name) is not None:
                setattr(self.limiter, name, int(body[name]))
        if self.kucoin_limiter is not None and body.get("kucoin_limit") is not None:
            self.kucoin_limiter.limit = int(body["kucoin_limit"])
        if body.get("reset"):
            self.limiter.reset()
            if self.kucoin_limiter is not None:
                self.kucoin_limiter.reset()
        return {"limit": self.limiter.limit, "ban_after": self.limiter.ban_after,
                "ban_seconds": self.limiter.ban_seconds,
                "kucoin_limit": self.kucoin_limiter.limit if self.kucoin_limiter else None}
