"""TradingView alert bodies -> authenticated-later, checked ``SignalReceived`` events.

Pure: bytes and the receive time in, a ``ParsedSignal`` out; no I/O and no clock. Two
bodies are accepted exactly as people already paste them into TradingView:

* the 3Commas **signal-bot** JSON: ``secret``, ``max_lag``, ``timestamp``,
  ``trigger_price``, ``tv_exchange``, ``tv_instrument``, ``action``
  (``enter_long``/``exit_long``/``enter_short``/``exit_short``, or a strategy's
  ``buy``/``sell`` read with ``strategy_info.market_position``), ``bot_uuid`` and
  ``order {amount, currency_type}``;
* the 3Commas **DCA-bot** start signal: ``message_type: "bot"``, ``bot_id``,
  ``email_token``, ``delay_seconds``, ``pair`` (``QUOTE_BASE``) and an optional
  ``action`` (``close_at_market_price``, ``add_funds_in_quote``/``_in_base`` with
  ``volume``).

Fields this module does not know are ignored, as 3Commas ignores them. The secret
(``secret`` / ``email_token``) is wrapped in ``SignalSecret`` at once: its repr is
masked and no error message ever quotes any value of the body, only field names.

Signal id (idempotency): ``sha256`` over the route, the action, the instrument/pair,
the amount and the body's own ``timestamp`` (signal-bot) — or, for the DCA body which
has no timestamp, the receive time truncated to the second. The secret is never part
of it. The same alert delivered twice therefore gets the same id, and the bot drops
the second; two genuine DCA alerts in the same second collapse into one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final

from sealbot.bots.common.fields import MAX_SIGNAL_AGE_SECONDS
from sealbot.domain import AmountType, Pair, SealbotError, SignalAction, SignalReceived
from sealbot.domain.money import out_of_bounds

MAX_BODY: Final = 16 * 1024
FUTURE_TOLERANCE: Final = timedelta(seconds=60)  # clock skew allowed between TradingView and us
_KNOWN_QUOTES: Final = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI", "USD", "EUR", "GBP", "TRY",
                        "BRL", "BTC", "ETH", "BNB")


class SignalRejected(SealbotError):
    """A body that cannot be acted on; ``field`` names the part, ``reason`` says why.
    Neither ever contains a value taken from the body."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


class StaleSignal(SignalRejected):
    """Older than its ``max_lag`` (or the bot's maximum age): refused and recorded."""


class SignalSecret:
    """A signal's shared secret. Masked in repr/str; compare with ``verify_secret``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The plaintext, for ``verify_secret`` only."""
        return self._value

    def __repr__(self) -> str:
        return "SignalSecret('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a SignalSecret is not serialisable")


class SignalFormat(StrEnum):
    SIGNAL_BOT = "signal_bot"
    DCA_BOT = "dca_bot"


@dataclass(frozen=True, slots=True)
class ParsedSignal:
    format: SignalFormat
    route: str  # bot_uuid (signal-bot body) or bot_id (DCA body): which bot it is for
    secret: SignalSecret
    signal: SignalReceived
    instrument: str | None = None  # tv_instrument as sent, e.g. BTCUSDT
    exchange: str | None = None  # tv_exchange as sent, e.g. BINANCE
    not_before: datetime | None = None  # receive time + delay_seconds (DCA body)


def verify_secret(expected: str, given: SignalSecret) -> bool:
    """Constant-time check of a signal's secret against the bot's.

    ``expected`` is either the plaintext secret or ``sha256:<hex>`` of it (so a bot
    may store only the hash)."""
    value = given.reveal().encode()
    if expected.startswith("sha256:"):
        return hmac.compare_digest(expected[7:].lower().encode(), hashlib.sha256(value).hexdigest().encode())
    return hmac.compare_digest(expected.encode(), value)


def hash_secret(secret: str) -> str:
    """The ``sha256:<hex>`` form ``verify_secret`` accepts."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def parse_signal(body: bytes, now: datetime, max_body: int = MAX_BODY, max_age: timedelta | None = None,
                 known_pairs: tuple[Pair, ...] = ()) -> ParsedSignal:
    """Parse and check one alert body received at ``now`` (timezone-aware).

    ``max_age`` is the bot's own limit; the body's ``max_lag`` can only tighten it.
    ``known_pairs`` resolve a compact ``tv_instrument`` (``BTCUSDT``) to a pair;
    otherwise the common quote currencies are tried. Raises ``SignalRejected``
    (``StaleSignal`` when too old) naming the field and the reason."""
    if len(body) > max_body:
        raise SignalRejected("body", f"is {len(body)} bytes, more than the {max_body} allowed")
    data = _load(body)
    if data.get("message_type") == "bot" or "email_token" in data:
        return _dca(data, now)
    return _signal_bot(data, now, max_age, known_pairs)


# --- the two formats ------------------------------------------------------------


_BOT_ACTIONS: Final = {
    "enter_long": SignalAction.ENTER_LONG, "exit_long": SignalAction.EXIT_LONG,
    "enter_short": SignalAction.ENTER_SHORT, "exit_short": SignalAction.EXIT_SHORT,
    "close_all": SignalAction.CLOSE_ALL,
}
_CURRENCY_TYPES: Final = {
    "quote": AmountType.QUOTE, "base": AmountType.BASE,
    "margin_percent": AmountType.PERCENT_OF_BALANCE, "percent": AmountType.PERCENT_OF_BALANCE,
}
_DCA_ACTIONS: Final = {
    None: SignalAction.START_DEAL, "start_deal": SignalAction.START_DEAL,
    "close_at_market_price": SignalAction.CLOSE_AT_MARKET,
    "add_funds_in_quote": SignalAction.ADD_FUNDS_IN_QUOTE, "add_funds_in_base": SignalAction.ADD_FUNDS_IN_BASE,
}


def _signal_bot(data: dict[str, Any], now: datetime, max_age: timedelta | None,
                known_pairs: tuple[Pair, ...]) -> ParsedSignal:
    secret = SignalSecret(_text(data, "secret"))
    route = _text(data, "bot_uuid")
    action = _action(data)
    stamp = _timestamp(data, "timestamp") if "timestamp" in data else None
    limit = max_age
    if "max_lag" in data:
        lag = _seconds(data, "max_lag")
        if lag <= 0:
            raise SignalRejected("max_lag", "must be a positive number of seconds")
        limit = timedelta(seconds=lag) if limit is None else min(limit, timedelta(seconds=lag))
    _check_age(stamp, now, limit)
    trigger = _amount(data, "trigger_price") if "trigger_price" in data else None
    instrument = _text(data, "tv_instrument") if "tv_instrument" in data else None
    exchange = _text(data, "tv_exchange") if "tv_exchange" in data else None
    amount = amount_type = None
    if "order" in data:
        order = data["order"]
        if not isinstance(order, dict):
            raise SignalRejected("order", "must be an object with amount and currency_type")
        amount = _amount(order, "amount", path="order.amount")
        kind = _text(order, "currency_type", path="order.currency_type") if "currency_type" in order else "quote"
        if kind not in _CURRENCY_TYPES:
            raise SignalRejected("order.currency_type", f"must be one of {', '.join(_CURRENCY_TYPES)}")
        amount_type = _CURRENCY_TYPES[kind]
    pair = _instrument_pair(instrument, known_pairs) if instrument else None
    at = stamp or now
    ident = _ident("sb", route, action.value, instrument or "", str(amount or ""), (stamp or now).isoformat())
    signal = SignalReceived(signal_id=ident, action=action, at=at, pair=pair, amount=amount,
                            amount_type=amount_type, trigger_price=trigger)
    return ParsedSignal(SignalFormat.SIGNAL_BOT, route, secret, signal, instrument, exchange)


def _action(data: dict[str, Any]) -> SignalAction:
    action = _text(data, "action")
    if action in _BOT_ACTIONS:
        return _BOT_ACTIONS[action]
    if action in ("buy", "sell"):
        # A TradingView strategy sends buy/sell; where it ends up says what it means.
        info = data.get("strategy_info")
        if not isinstance(info, dict):
            raise SignalRejected("strategy_info", "is required with action buy/sell (market_position says "
                                 "whether it enters or exits)")
        position = _text(info, "market_position", path="strategy_info.market_position")
        previous = info.get("prev_market_position")
        if position == "long":
            return SignalAction.ENTER_LONG
        if position == "short":
            return SignalAction.ENTER_SHORT
        if position == "flat":
            return SignalAction.EXIT_SHORT if previous == "short" or action == "buy" else SignalAction.EXIT_LONG
        raise SignalRejected("strategy_info.market_position", "must be long, short or flat")
    raise SignalRejected("action", f"must be one of {', '.join(_BOT_ACTIONS)}, buy, sell")


def _dca(data: dict[str, Any], now: datetime) -> ParsedSignal:
    if data.get("message_type") != "bot":
        raise SignalRejected("message_type", "must be \"bot\" in a DCA-bot signal")
    secret = SignalSecret(_text(data, "email_token"))
    raw_id = data.get("bot_id")
    route = str(_integer(data, "bot_id")) if isinstance(raw_id, int | Decimal) else _text(data, "bot_id")
    delay = _seconds(data, "delay_seconds") if "delay_seconds" in data else 0
    if delay < 0:
        raise SignalRejected("delay_seconds", "must not be negative")
    pair = None
    if "pair" in data:
        try:
            pair = Pair.parse_quote_base(_text(data, "pair"))
        except ValueError:
            raise SignalRejected("pair", "must be QUOTE_BASE, e.g. USDT_BTC") from None
    raw_action = data.get("action")
    if raw_action is not None and not isinstance(raw_action, str):
        raise SignalRejected("action", "must be a string")
    if raw_action not in _DCA_ACTIONS:
        raise SignalRejected("action", "must be one of " + ", ".join(a for a in _DCA_ACTIONS if a))
    action = _DCA_ACTIONS[raw_action]
    amount = amount_type = None
    if action in (SignalAction.ADD_FUNDS_IN_QUOTE, SignalAction.ADD_FUNDS_IN_BASE):
        amount = _amount(data, "volume")
        amount_type = AmountType.QUOTE if action is SignalAction.ADD_FUNDS_IN_QUOTE else AmountType.BASE
    received = now.replace(microsecond=0)
    ident = _ident("dca", route, action.value, pair.symbol if pair else "", str(amount or ""), received.isoformat())
    signal = SignalReceived(signal_id=ident, action=action, at=now, pair=pair, amount=amount, amount_type=amount_type)
    return ParsedSignal(SignalFormat.DCA_BOT, route, secret, signal, not_before=now + timedelta(seconds=delay))


# --- field readers: each names the field, none quotes its value ------------------


def _load(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SignalRejected("body", "is not UTF-8 text") from None
    try:
        data = json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise SignalRejected("body", f"is not valid JSON{where}") from None
    except RecursionError:
        raise SignalRejected("body", "is nested too deeply") from None
    if not isinstance(data, dict):
        raise SignalRejected("body", "must be a JSON object")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError("NaN and Infinity are not numbers a signal may carry")


def _placeholder(value: str) -> bool:
    return "{{" in value and "}}" in value


def _text(data: dict[str, Any], name: str, path: str | None = None) -> str:
    field = path or name
    if name not in data or data[name] is None:
        raise SignalRejected(field, "is required")
    value = data[name]
    if not isinstance(value, str):
        raise SignalRejected(field, f"must be a string, not {_kind(value)}")
    value = value.strip()
    if not value:
        raise SignalRejected(field, "must not be empty")
    if _placeholder(value):
        raise SignalRejected(field, "is a TradingView placeholder that was not filled in")
    return value


def _decimal(data: dict[str, Any], name: str, positive: bool = False, path: str | None = None) -> Decimal:
    field = path or name
    if name not in data or data[name] is None:
        raise SignalRejected(field, "is required")
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise SignalRejected(field, f"must be a number, not {_kind(value)}")
    if isinstance(value, str) and _placeholder(value):
        raise SignalRejected(field, "is a TradingView placeholder that was not filled in")
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise SignalRejected(field, "is not a number") from None
    if not number.is_finite():
        raise SignalRejected(field, "must be a finite number")
    if positive and number <= 0:
        raise SignalRejected(field, "must be positive")
    return number


def _amount(data: dict[str, Any], name: str, path: str | None = None) -> Decimal:
    """A positive amount or price within the bounds every config's amounts obey
    (``domain.money``: at most 10^12, at most 12 decimal places)."""
    number = _decimal(data, name, positive=True, path=path)
    reason = out_of_bounds(number)
    if reason:
        raise SignalRejected(path or name, reason)
    return number


def _seconds(data: dict[str, Any], name: str) -> int:
    """A whole number of seconds, at most one day (``MAX_SIGNAL_AGE_SECONDS``): larger
    ones overflow ``timedelta`` when added to the receive time."""
    seconds = _integer(data, name)
    if seconds > MAX_SIGNAL_AGE_SECONDS:
        raise SignalRejected(name, f"must be at most {MAX_SIGNAL_AGE_SECONDS} seconds (one day)")
    return seconds


def _integer(data: dict[str, Any], name: str) -> int:
    number = _decimal(data, name)
    if number != number.to_integral_value():
        raise SignalRejected(name, "must be a whole number")
    return int(number)


def _timestamp(data: dict[str, Any], name: str) -> datetime:
    value = data[name]
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(int(value), tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise SignalRejected(name, "is not a valid epoch time") from None
    text = _text(data, name)
    if text.isdigit():
        return _timestamp({name: int(text)}, name)
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise SignalRejected(name, "must be an ISO 8601 time like 2024-05-01T12:00:00Z") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _check_age(stamp: datetime | None, now: datetime, limit: timedelta | None) -> None:
    if stamp is None:
        if limit is not None:
            raise StaleSignal("timestamp", "is required to check the signal's age")
        return
    age = now - stamp
    if age < -FUTURE_TOLERANCE:
        raise StaleSignal("timestamp", "is in the future (check the sender's clock)")
    if limit is not None and age > limit:
        raise StaleSignal("timestamp", f"the signal is {int(age.total_seconds())} s old, more than the "
                          f"{int(limit.total_seconds())} s allowed")


def _instrument_pair(instrument: str, known: tuple[Pair, ...]) -> Pair | None:
    symbol = instrument.split(":")[-1].upper().removesuffix(".P").removesuffix("PERP")
    for pair in known:
        if symbol in (pair.compact, pair.symbol, f"{pair.base}-{pair.quote}", f"{pair.base}_{pair.quote}"):
            return pair
    try:
        return Pair.parse(symbol)
    except ValueError:
        pass
    for quote in _KNOWN_QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote) and symbol[: -len(quote)].isalnum():
            return Pair(symbol[: -len(quote)], quote)
    return None


def _ident(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean", int: "an integer", Decimal: "a number",
            str: "a string"}.get(type(value), "null" if value is None else "another type")
