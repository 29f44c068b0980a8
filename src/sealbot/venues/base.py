"""The one async interface every venue (live exchange through ccxt, paper) implements.

The engine, the backtester and the services talk to this interface only, so a bot
runs unchanged against simex, a testnet, a real exchange or the paper venue.

Orders are addressed by sealbot's ``ClientOrderId`` (derived from bot, deal, step),
never by the exchange's id: after a crash the engine can ask "did my order
``sbB1-7-so2`` reach the exchange?" without having stored anything the exchange said.

Orders and fills on the account that sealbot did not place (their client id does not
parse as ours) are *kept*, not dropped: their ``client_id`` is a ``ForeignClientId``
that carries the exchange's own client id. Such an order is the signature of a leaked
key, and the watchdog flags it (``is_foreign``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sealbot.domain import Candle, ClientOrderId, Fill, MarketRules, Order, Pair, Refused
from sealbot.domain.money import ZERO
from sealbot.venues.trade_paging import ResumeAt

FOREIGN_BOT = "foreign"


class ForeignClientId(ClientOrderId, frozen=True, order=True):
    """The client id of an order sealbot did not place. ``raw`` is what the exchange
    reported (its client id, or its order id when there is none). It never equals a
    real ``ClientOrderId``: struct equality compares the class too."""

    raw: str = ""

    @classmethod
    def of(cls, raw: str | None) -> ForeignClientId:
        return cls(FOREIGN_BOT, 0, "0", raw or "")

    @property
    def text(self) -> str:
        return self.raw

    def __str__(self) -> str:
        return f"foreign:{self.raw}"


def parse_client_id(text: str | None, fallback: str | None = None) -> ClientOrderId:
    """Ours when ``text`` parses as a sealbot id, otherwise a ``ForeignClientId`` holding
    ``text`` (or ``fallback``, e.g. the exchange's order id, when there is no client id)."""
    if text:
        try:
            return ClientOrderId.parse(text)
        except ValueError:
            pass
    return ForeignClientId.of(text or fallback)


def is_foreign(client_id: ClientOrderId) -> bool:
    """True for an order or fill that sealbot did not place."""
    return isinstance(client_id, ForeignClientId)


@dataclass(frozen=True, slots=True)
class Balance:
    """One asset's holdings: ``free`` can be spent, ``used`` is locked in open orders."""

    asset: str
    free: Decimal = ZERO
    used: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.used


@dataclass(frozen=True, slots=True)
class Ticker:
    """Best bid/ask and last trade price; any may be unknown on a quiet market."""

    pair: Pair
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    at: datetime


@dataclass(frozen=True, slots=True)
class TradeBatch:
    """What one bounded read of an account's trades on a pair returned (``read_my_trades``).

    ``fills``: every trade from where the read started up to ``resume``, oldest first, one
    per trade id, no hole among them. ``resume`` None: that is every trade since the time
    asked, up to the present. Otherwise the read hit its request bound: reading again from
    ``resume`` returns the next stretch, none of these again (a backlog is drained over
    several reads, each bounded)."""

    fills: list[Fill]
    resume: ResumeAt | None = None
    requests: int = 1


class Verdict(StrEnum):
    OK = "ok"
    FLAGGED = "flagged"  # usable, but the user is warned (e.g. no IP restriction)
    REFUSED = "refused"  # sealbot will not trade with this key


class IpPolicy(StrEnum):
    """What a key without an IP whitelist gets: a warning, or a refusal."""

    WARN = "warn"
    STRICT = "strict"


NOT_REPORTED = "the exchange does not report key permissions"


@dataclass(frozen=True, slots=True)
class PermissionReport:
    """What an exchange says an API key may do, and sealbot's verdict on it.

    ``None`` in a capability means the exchange did not say. ``checked`` is False when
    the exchange offers no way to ask (the reasons then say so). ``egress_ip`` is the
    address sealbot's requests leave from, which the user should whitelist, when known.
    """

    exchange: str
    checked: bool
    verdict: Verdict
    reasons: tuple[str, ...] = ()
    can_trade: bool | None = None
    can_withdraw: bool | None = None
    can_transfer: bool | None = None
    ip_restricted: bool | None = None
    ip_whitelist: tuple[str, ...] = ()
    egress_ip: str | None = None
    raw: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.verdict is not Verdict.REFUSED

    def raise_if_refused(self) -> None:
        """Raise ``Refused`` naming every reason when the key must not be used."""
        if self.verdict is Verdict.REFUSED:
            raise Refused("key permissions", "; ".join(self.reasons) or "refused")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PermissionReport:
        """The report as ``to_dict`` stored it (the watchdog's baseline after a restart)."""
        return cls(str(data.get("exchange", "")), bool(data.get("checked", False)),
                   Verdict(str(data.get("verdict", Verdict.FLAGGED.value))),
                   tuple(str(r) for r in data.get("reasons") or ()),
                   data.get("can_trade"), data.get("can_withdraw"), data.get("can_transfer"),
                   data.get("ip_restricted"), tuple(str(ip) for ip in data.get("ip_whitelist") or ()),
                   data.get("egress_ip"))

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form to store and show (no secret is ever part of a report)."""
        return {
            "exchange": self.exchange, "checked": self.checked, "verdict": self.verdict.value,
            "reasons": list(self.reasons), "can_trade": self.can_trade,
            "can_withdraw": self.can_withdraw, "can_transfer": self.can_transfer,
            "ip_restricted": self.ip_restricted, "ip_whitelist": list(self.ip_whitelist),
            "egress_ip": self.egress_ip,
        }


class Venue(ABC):
    """An exchange account as sealbot sees it. All amounts and prices are Decimal."""

    name: str

    @abstractmethod
    async def load_markets(self) -> dict[Pair, MarketRules]:
        """Precision and limits of every spot pair, from the exchange's market metadata."""

    @abstractmethod
    async def fetch_balances(self) -> dict[str, Balance]:
        """Holdings per asset (assets with nothing at all are left out)."""

    @abstractmethod
    async def fetch_ticker(self, pair: Pair) -> Ticker: ...

    @abstractmethod
    async def fetch_candles(
        self, pair: Pair, timeframe: str, since: datetime | None = None, limit: int | None = None
    ) -> list[Candle]: ...

    @abstractmethod
    async def create_order(self, order: Order, attempt_at: datetime | None = None) -> Order:
        """Send ``order`` with its client id; returns it with the exchange's status.

        ``attempt_at`` is the time this send attempt was journalled. A venue whose
        ``send_window()`` is not ``None`` signs the request with it, so the exchange
        refuses the request (``RequestExpired``) once that window has passed since
        ``attempt_at``; other venues ignore it."""

    def send_window(self) -> float | None:
        """Seconds after ``attempt_at`` during which the exchange may still carry out an
        order request (Binance's ``recvWindow``, KuCoin's timestamp tolerance), or
        ``None`` when the venue cannot pin a request's time: then nothing bounds how late
        a request that went unanswered may still arrive."""
        return None

    @abstractmethod
    async def cancel_order(self, client_id: ClientOrderId, pair: Pair) -> Order: ...

    @abstractmethod
    async def fetch_order(self, client_id: ClientOrderId, pair: Pair) -> Order:
        """The order's current state; raises ``UnknownOrder`` if the exchange has none."""

    @abstractmethod
    async def fetch_open_orders(self, pair: Pair | None = None) -> list[Order]:
        """Open orders, foreign ones included (see ``is_foreign``)."""

    @abstractmethod
    async def fetch_my_trades(self, pair: Pair, since: datetime | None = None) -> list[Fill]:
        """Executions since ``since``, oldest first, foreign ones included."""

    async def read_my_trades(self, pair: Pair, since: datetime, resume: ResumeAt | None = None) -> TradeBatch:
        """The trades since ``since`` (or, after a read that stopped at its bound, from its
        ``resume``) up to a bound on the requests one call makes; see ``TradeBatch``. A
        venue whose ``fetch_my_trades`` is complete in one call (paper) returns it whole."""
        if resume is not None:
            raise ValueError(f"resume: {self.name} never stops a read early, so it has nothing to resume")
        return TradeBatch(await self.fetch_my_trades(pair, since))

    @abstractmethod
    async def check_permissions(self) -> PermissionReport: ...

    @abstractmethod
    async def close(self) -> None:
        """Release connections; a closed venue must not be used again."""

    async def __aenter__(self) -> Venue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
