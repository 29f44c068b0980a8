"""TradingView-style signal webhooks: authenticate, check, deduplicate, deliver.

TradingView cannot send custom headers, so the bot's secret travels in the body
(``secret`` or ``email_token``) and is compared in constant time with the stored
``sha256:`` hash. The checks, in order, and what a caller learns from each:

1. body larger than ``MAX_BODY``                            -> ``too_large``
2. not JSON / a field missing or wrong / older than its age  -> ``malformed`` / ``stale``
3. unknown bot *or* wrong secret (indistinguishable)         -> ``unauthorized``
4. source IP not on the bot's allow-list                     -> ``forbidden``
5. body format not the bot's kind, older than the bot's age  -> ``malformed`` / ``stale``
   bot not running                                           -> ``not_running``
6. more than the bot's ``max_per_minute``                    -> ``rate_limited``
7. the same signal id seen before                            -> ``duplicate``

Every refusal is written to the audit log with the reason, the field and the source
IP, never with the body or its secret (and nothing here logs a payload). Refusals of
unauthenticated bodies are *not* written to the ``signals`` table: the signal id does
not depend on the secret, so a stranger could otherwise burn a genuine alert's id.
An accepted signal is recorded in ``signals`` and queued in the bot inbox
(``services.inbox``) for the engine.

A body whose bot is ``copy-<id>`` is for a copy set (``services.copy_trading``): the
set's secret is checked the same way, and the signal is queued for every running member
bot, its amount scaled for that member (``members`` in ``Accepted``). A copy set has its
own policy (allow-list, rate limit: ``set_copy_set_webhook_policy``).
"""

from __future__ import annotations

import ipaddress
import secrets
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, NoReturn

from sealbot import audit
from sealbot.bots.registry import parse_config
from sealbot.bots.signals import MAX_BODY as _PARSER_MAX_BODY
from sealbot.bots.signals import (
    ParsedSignal,
    SignalFormat,
    SignalRejected,
    StaleSignal,
    hash_secret,
    parse_signal,
    verify_secret,
)
from sealbot.domain.errors import InvalidConfig, SealbotError
from sealbot.engine.live import bot_pairs
from sealbot.services import copy_trading, inbox
from sealbot.services.platform import Platform
from sealbot.store.repositories.copysets import BotGroupRepository
from sealbot.store.repositories.web import BotLookup, WebhookPolicyRepository

# TradingView's published webhook source addresses (tradingview.com, "About webhooks").
TRADINGVIEW_IPS: Final = ("52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7")
MAX_BODY: Final = _PARSER_MAX_BODY  # bytes; larger bodies are refused unread
DEFAULT_MAX_AGE: Final = timedelta(minutes=5)
DEFAULT_MAX_PER_MINUTE: Final = 30
SIGNAL_KINDS: Final = ("signal", "dca")  # bot kinds that take webhook signals
_FORMAT_KIND: Final = {SignalFormat.SIGNAL_BOT: "signal", SignalFormat.DCA_BOT: "dca"}
_NO_SUCH_BOT_HASH: Final = hash_secret(secrets.token_hex(32))  # keeps the unknown-bot path as slow as a real check


class WebhookRefused(SealbotError):
    """A refused webhook call. ``kind`` is one of the module docstring's refusals."""

    def __init__(self, kind: str, reason: str, field: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.kind, self.reason, self.field, self.retry_after = kind, reason, field, retry_after


@dataclass(frozen=True, slots=True)
class Accepted:
    bot_id: int
    signal_id: str
    action: str
    inbox_id: int
    members: tuple[int, ...] = ()  # a copy set's signal: every member bot it was queued for


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    bot_id: int
    allowed_ips: tuple[str, ...] | None
    max_per_minute: int


class _RateLimiter:
    """A sliding one-minute window per bot, in this process."""

    def __init__(self) -> None:
        self._seen: dict[int, deque[datetime]] = {}
        self._lock = threading.Lock()

    def allow(self, bot_id: int, limit: int, at: datetime) -> bool:
        with self._lock:
            window = self._seen.setdefault(bot_id, deque())
            while window and window[0] <= at - timedelta(minutes=1):
                window.popleft()
            if len(window) >= limit:
                return False
            window.append(at)
            return True


class SignalGate:
    """The webhook's use case; one per web process (it holds the rate-limit windows)."""

    def __init__(self, platform: Platform, *, max_age: timedelta = DEFAULT_MAX_AGE) -> None:
        self.platform, self.max_age = platform, max_age
        self._limiter = _RateLimiter()

    def receive(self, body: bytes, source_ip: str | None, now: datetime | None = None) -> Accepted:
        at = now or datetime.now(UTC)
        if len(body) > MAX_BODY:
            self._refuse("too_large", f"body is larger than {MAX_BODY} bytes", "body", source_ip)
        try:
            parsed = parse_signal(body, at, max_age=self.max_age)
        except StaleSignal as exc:
            self._refuse("stale", exc.reason, exc.field, source_ip)
        except SignalRejected as exc:
            self._refuse("malformed", exc.reason, exc.field, source_ip)
        group_id = copy_trading.copy_set_id(parsed.route)
        if group_id is not None:
            return self._receive_for_copy_set(group_id, parsed, at, source_ip)
        bot_id = int(parsed.route) if parsed.route.isdigit() and len(parsed.route) < 18 else None
        with self.platform.uow() as uow:
            bot = BotLookup(uow.session).any_bot(bot_id) if bot_id is not None else None
            stored = bot.webhook_secret_hash if bot is not None and bot.webhook_secret_hash else _NO_SUCH_BOT_HASH
            if not verify_secret(stored, parsed.secret) or bot is None or not bot.webhook_secret_hash:
                self._refuse("unauthorized", "unknown bot or wrong secret", "secret", source_ip)
            owner, kind, status = bot.owner_id, bot.kind, bot.status
            bot_max_age = bot.config.get("max_signal_age_seconds") if isinstance(bot.config, dict) else None
            traded = _traded_pairs(bot.kind, bot.config)
            policy = WebhookPolicyRepository(uow.session).get(bot.id)
            allowed = policy.allowed_ips if policy is not None else None
            limit = policy.max_per_minute if policy is not None else DEFAULT_MAX_PER_MINUTE
        subject = f"bot:{bot.id}"
        if allowed and not _ip_allowed(source_ip, allowed):
            self._refuse("forbidden", "source address is not on this bot's allow-list", "source_ip", source_ip,
                         subject)
        if kind != _FORMAT_KIND[parsed.format]:
            self._refuse("malformed", f"a {kind} bot does not take {parsed.format.value} bodies", "body", source_ip,
                         subject)
        if isinstance(bot_max_age, int) and parsed.signal.at < at - timedelta(seconds=bot_max_age):
            self._refuse("stale", f"older than the bot's {bot_max_age} s", "timestamp", source_ip, subject)
        if status != "running":
            self._refuse("not_running", "this bot is not running", "bot", source_ip, subject)
        pair = parsed.signal.pair
        if pair is not None and traded is not None and pair.symbol not in traded:
            # the engine would drop it: say so to the sender instead of accepting it for nothing
            # (the reason names the bot's pairs, never the body's value: signals.md)
            self._refuse("malformed", f"not a pair this bot trades (it trades {', '.join(sorted(traded))})",
                         "pair", source_ip, subject)
        if not self._limiter.allow(bot.id, limit, at):
            self._refuse("rate_limited", f"more than {limit} signals in a minute", "bot", source_ip, subject,
                         retry_after=60)
        signal = parsed.signal
        with self.platform.uow() as uow:
            if not uow.signals.add_if_new(owner, bot.id, signal.signal_id, status="accepted", at=at):
                audit.record(uow.session, actor="webhook", action="signal.refused", subject=subject,
                             details={"kind": "duplicate", "signal_id": signal.signal_id, "ip": source_ip})
                uow.commit()
                raise WebhookRefused("duplicate", "this signal was already received", "signal_id")
            item = inbox.post(uow, owner, bot.id, signal)
            audit.record(uow.session, actor="webhook", action="signal.accepted", subject=subject,
                         details={"signal_id": signal.signal_id, "action": signal.action.value,
                                  "format": parsed.format.value, "ip": source_ip})
        return Accepted(bot.id, signal.signal_id, signal.action.value, item)

    def _receive_for_copy_set(self, group_id: int, parsed: ParsedSignal, at: datetime,
                              source_ip: str | None) -> Accepted:
        """The copy-set branch of ``receive``: same checks, then fan out to the members."""
        with self.platform.uow() as uow:
            group = BotGroupRepository(uow.session).any_group(group_id)
            stored = group.webhook_secret_hash if group is not None and group.webhook_secret_hash else _NO_SUCH_BOT_HASH
            if not verify_secret(stored, parsed.secret) or group is None or not group.webhook_secret_hash:
                self._refuse("unauthorized", "unknown bot or wrong secret", "secret", source_ip)
            owner, kind = group.owner_id, group.kind
            max_age = group.config.get("max_signal_age_seconds") if isinstance(group.config, dict) else None
            policy = BotGroupRepository(uow.session).policy(group_id)
            allowed = policy.allowed_ips if policy is not None else None
            limit = policy.max_per_minute if policy is not None else DEFAULT_MAX_PER_MINUTE
        subject = f"copyset:{group_id}"
        if allowed and not _ip_allowed(source_ip, allowed):
            self._refuse("forbidden", "source address is not on this copy set's allow-list", "source_ip", source_ip,
                         subject)
        if kind != _FORMAT_KIND[parsed.format]:
            self._refuse("malformed", f"a {kind} copy set does not take {parsed.format.value} bodies", "body",
                         source_ip, subject)
        if isinstance(max_age, int) and parsed.signal.at < at - timedelta(seconds=max_age):
            self._refuse("stale", f"older than the copy set's {max_age} s", "timestamp", source_ip, subject)
        if not self._limiter.allow(-group_id, limit, at):  # negative: never a bot id's window
            self._refuse("rate_limited", f"more than {limit} signals in a minute", "bot", source_ip, subject,
                         retry_after=60)
        signal = parsed.signal
        with self.platform.uow() as uow:
            out = copy_trading.fan_out(uow, BotGroupRepository(uow.session).get(owner, group_id), signal)
            queued = [f for f in out if f.inbox_id is not None]
            if queued:
                audit.record(uow.session, actor="webhook", action="signal.accepted", subject=subject,
                             details={"signal_id": signal.signal_id, "action": signal.action.value,
                                      "format": parsed.format.value, "ip": source_ip,
                                      "bots": [f.bot_id for f in queued]})
        if not out:
            self._refuse("not_running", "no member of this copy set is running", "bot", source_ip, subject)
        if not queued:
            self._refuse("duplicate", "this signal was already received", "signal_id", source_ip, subject)
        first = queued[0]
        return Accepted(first.bot_id, signal.signal_id, signal.action.value, first.inbox_id or 0,
                        tuple(f.bot_id for f in queued))

    def _refuse(self, kind: str, reason: str, field: str | None, source_ip: str | None,
                subject: str = "webhook", retry_after: int | None = None) -> NoReturn:
        with self.platform.uow() as uow:
            audit.record(uow.session, actor="webhook", action="signal.refused", subject=subject,
                         details={"kind": kind, "field": field, "reason": reason, "ip": source_ip})
        raise WebhookRefused(kind, reason, field, retry_after)


def _traded_pairs(kind: str, config: object) -> set[str] | None:
    """The symbols a stored bot config trades (``engine.live.bot_pairs``, the engine's own
    reading); None when the stored config no longer validates (the engine then decides)."""
    if not isinstance(config, dict):
        return None
    try:
        return {p.symbol for p in bot_pairs(parse_config(kind, config))} or None
    except InvalidConfig:
        return None


def _ip_allowed(source_ip: str | None, allowed: Iterable[str]) -> bool:
    if source_ip is None:
        return False
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in allowed)


def new_webhook_secret(platform: Platform, owner_id: int, bot_id: int) -> str:
    """A fresh 192-bit secret for the bot (returned once; only its hash is kept)."""
    secret = secrets.token_urlsafe(24)
    with platform.uow() as uow:
        bot = uow.bots.get(owner_id, bot_id)
        if bot.kind not in SIGNAL_KINDS:
            raise InvalidConfig("kind", f"only {' and '.join(SIGNAL_KINDS)} bots take webhook signals")
        uow.bots.update(owner_id, bot_id, webhook_secret_hash=hash_secret(secret))
        audit.record(uow.session, actor=f"user:{owner_id}", action="bot.webhook_secret_set", subject=f"bot:{bot_id}",
                     details={})
    return secret


def _policy_input(allowed_ips: Iterable[str] | None, max_per_minute: int) -> list[str] | None:
    """Normalized allow-list (``tradingview`` expanded), or InvalidConfig naming the entry."""
    ips: list[str] | None = None
    if allowed_ips is not None:
        ips = []
        for i, item in enumerate(allowed_ips):
            if item.strip().lower() == "tradingview":
                ips.extend(TRADINGVIEW_IPS)
                continue
            try:
                ips.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise InvalidConfig(f"allowed_ips.{i}", "is not an IP address or network") from None
    if not 1 <= max_per_minute <= 600:
        raise InvalidConfig("max_per_minute", "must be between 1 and 600")
    return ips


def set_webhook_policy(platform: Platform, owner_id: int, bot_id: int, *, allowed_ips: Iterable[str] | None,
                       max_per_minute: int = DEFAULT_MAX_PER_MINUTE) -> WebhookPolicy:
    """Allow-list (addresses or networks; the word ``tradingview`` adds TradingView's four
    addresses; None allows any source) and the per-minute limit."""
    ips = _policy_input(allowed_ips, max_per_minute)
    with platform.uow() as uow:
        row = WebhookPolicyRepository(uow.session).put(owner_id, bot_id, allowed_ips=ips,
                                                       max_per_minute=max_per_minute)
        audit.record(uow.session, actor=f"user:{owner_id}", action="bot.webhook_policy_set", subject=f"bot:{bot_id}",
                     details={"allowed_ips": ips, "max_per_minute": max_per_minute})
        return WebhookPolicy(bot_id, tuple(row.allowed_ips) if row.allowed_ips is not None else None,
                             row.max_per_minute)


def webhook_policy(platform: Platform, owner_id: int, bot_id: int) -> WebhookPolicy:
    with platform.uow() as uow:
        bot = uow.bots.get(owner_id, bot_id)
        row = WebhookPolicyRepository(uow.session).get(bot.id)
        if row is None:
            return WebhookPolicy(bot_id, None, DEFAULT_MAX_PER_MINUTE)
        return WebhookPolicy(bot_id, tuple(row.allowed_ips) if row.allowed_ips is not None else None,
                             row.max_per_minute)


@dataclass(frozen=True, slots=True)
class CopySetWebhookPolicy:
    copy_set_id: int
    allowed_ips: tuple[str, ...] | None
    max_per_minute: int


def set_copy_set_webhook_policy(platform: Platform, owner_id: int, group_id: int, *,
                                allowed_ips: Iterable[str] | None,
                                max_per_minute: int = DEFAULT_MAX_PER_MINUTE) -> CopySetWebhookPolicy:
    """The same policy as ``set_webhook_policy``, for a copy set's route ``copy-<id>``."""
    ips = _policy_input(allowed_ips, max_per_minute)
    with platform.uow() as uow:
        row = BotGroupRepository(uow.session).put_policy(owner_id, group_id, allowed_ips=ips,
                                                         max_per_minute=max_per_minute)
        audit.record(uow.session, actor=f"user:{owner_id}", action="copyset.webhook_policy_set",
                     subject=f"copyset:{group_id}", details={"allowed_ips": ips, "max_per_minute": max_per_minute})
        return CopySetWebhookPolicy(group_id, tuple(row.allowed_ips) if row.allowed_ips is not None else None,
                                    row.max_per_minute)


def copy_set_webhook_policy(platform: Platform, owner_id: int, group_id: int) -> CopySetWebhookPolicy:
    with platform.uow() as uow:
        repo = BotGroupRepository(uow.session)
        repo.get(owner_id, group_id)
        row = repo.policy(group_id)
        if row is None:
            return CopySetWebhookPolicy(group_id, None, DEFAULT_MAX_PER_MINUTE)
        return CopySetWebhookPolicy(group_id, tuple(row.allowed_ips) if row.allowed_ips is not None else None,
                                    row.max_per_minute)
