"""Binance's request parameters and error answers, as simex's Binance dialect checks
them: the error codes and messages ccxt maps (-1100 illegal characters, -1102 a
mandatory parameter, -2015 a bad key...), and the request context a handler reads its
parameters through. Kept apart from the endpoints (``simex.binance``), which are many."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sealbot.simex.errors import Reason
from sealbot.simex.http import Incoming
from sealbot.simex.keys import ApiKey

NUMBER = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")

class BinanceError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def bad_key() -> BinanceError:
    return BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)


def mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


REASONS: dict[Reason, tuple[int, int]] = {
    Reason.UNKNOWN_SYMBOL: (-1121, 400),
    Reason.BAD_PARAM: (-1100, 400),
    Reason.MISSING_PARAM: (-1102, 400),
    Reason.FILTER: (-1013, 400),
    Reason.INSUFFICIENT_BALANCE: (-2010, 400),
    Reason.DUPLICATE_ORDER: (-2010, 400),
    Reason.WOULD_TAKE: (-2010, 400),
    Reason.WOULD_TRIGGER: (-2010, 400),
    Reason.REJECTED: (-2010, 400),
    Reason.UNKNOWN_ORDER: (-2013, 400),
    Reason.NOT_PERMITTED: (-2015, 401),
}


@dataclass
class Ctx:
    req: Incoming
    key: ApiKey | None

    @property
    def account_id(self) -> int:
        assert self.key is not None
        return self.key.account_id

    def get(self, name: str) -> str | None:
        value = self.req.params.get(name)
        return value if value not in (None, "") else None

    def need(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise mandatory(name)
        return value

    def decimal(self, name: str) -> Decimal | None:
        value = self.get(name)
        if value is None:
            return None
        if not NUMBER.match(value):
            raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                                      "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")
        try:
            return Decimal(value)
        except InvalidOperation:
            raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.") from None

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.get(name)
        if value is None:
            return default
        if not value.lstrip("-").isdigit():
            raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; "
                                      "legal range is '^[0-9]{1,20}$'.")
        return int(value)
