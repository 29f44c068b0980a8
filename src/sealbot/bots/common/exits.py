"""Exit rules of a position and the watcher that fires them.

``ExitSettings`` is what the user asked for (take-profit targets with shares, trailing
on the last target, stop loss with timeout, trailing stop loss, move to breakeven).
``ExitWatch`` is the little state that price and time move: the current stop price, when
it was first breached, the best price seen (trailing stop) and the trailing take
profit's peak. ``watch_price``/``watch_time`` return a close reason when an exit fires;
``watch_interest`` gives the exact price levels and time at which that could happen.

Directions are mirrored with a sign: for a long, "favourable" is up and the stop sits
below; for a short, the other way round.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from msgspec import Struct
from msgspec.structs import replace

from sealbot.bots.base import Interest
from sealbot.bots.common.position import breakeven_price, entered
from sealbot.domain.deals import CloseReason, Deal
from sealbot.domain.market import Direction
from sealbot.domain.money import HUNDRED, ZERO


class Target(Struct, frozen=True):
    """A take-profit target: ``share`` % of the position at ``profit_pct`` % profit
    (or at the absolute ``price``)."""

    share: Decimal
    profit_pct: Decimal | None = None
    price: Decimal | None = None


class ExitSettings(Struct, frozen=True):
    targets: tuple[Target, ...] = ()
    trailing_deviation: Decimal | None = None  # trailing on the last target, % from its peak
    profit_basis: Decimal | None = None  # quote the profit % is measured on; None: the entry cost
    stop_loss_pct: Decimal | None = None
    stop_loss_price: Decimal | None = None
    stop_loss_timeout: int = 0  # seconds the stop must stay breached before it fires
    trailing_stop: bool = False
    breakeven: bool = False  # move the stop to breakeven once the first target filled
    profit_in_base: bool = False

    @property
    def has_stop(self) -> bool:
        return bool(self.stop_loss_pct) or self.stop_loss_price is not None


class ExitWatch(Struct, frozen=True):
    sl_price: Decimal | None = None
    breached_since: datetime | None = None
    sl_peak: Decimal | None = None
    trail_price: Decimal | None = None  # price at which the trailing target activates
    trail_peak: Decimal | None = None


def sign(direction: Direction) -> int:
    return 1 if direction is Direction.LONG else -1


def favourable(direction: Direction, price: Decimal, level: Decimal) -> bool:
    """``price`` is at or beyond ``level`` in the profitable direction."""
    return price >= level if direction is Direction.LONG else price <= level


def adverse(direction: Direction, price: Decimal, level: Decimal) -> bool:
    """``price`` is at or beyond ``level`` in the losing direction."""
    return price <= level if direction is Direction.LONG else price >= level


def shifted(direction: Direction, price: Decimal, pct: Decimal) -> Decimal:
    """``price`` moved ``pct`` % in the profitable direction (negative: losing)."""
    return price * (HUNDRED + sign(direction) * pct) / HUNDRED


def target_price(settings: ExitSettings, deal: Deal, target: Target) -> Decimal | None:
    """Unrounded price of ``target``: the entry cost plus ``profit_pct`` % of the basis."""
    if target.price is not None:
        return target.price
    base, quote = entered(deal)
    if base <= 0 or target.profit_pct is None:
        return None
    basis = settings.profit_basis if settings.profit_basis is not None else quote
    return (quote + sign(deal.direction) * basis * target.profit_pct / HUNDRED) / base


def arm(settings: ExitSettings, deal: Deal, previous: ExitWatch | None, breakeven_moved: bool) -> ExitWatch:
    """Fresh watch after the entry changed (a fill averaged the price, or exits were edited)."""
    direction = deal.direction
    base, quote = entered(deal)
    avg = quote / base if base > 0 else None
    sl: Decimal | None = None
    if settings.stop_loss_price is not None:
        sl = settings.stop_loss_price
    elif settings.stop_loss_pct and avg is not None:
        sl = shifted(direction, avg, -settings.stop_loss_pct)
    if breakeven_moved:
        sl = _better_stop(direction, sl, breakeven_price(deal))
    trail_price = previous.trail_price if previous else None
    return ExitWatch(sl_price=sl, sl_peak=avg if settings.trailing_stop else None, trail_price=trail_price)


def edited(settings: ExitSettings, take_profit_pct: Decimal | None, stop_loss_pct: Decimal | None) -> ExitSettings:
    """A running deal's exits after a manual edit; None leaves that part as it was, a stop
    loss of 0 removes the stop. A new take profit replaces the whole ladder by one target."""
    if take_profit_pct is not None:
        settings = replace(settings, targets=(Target(share=HUNDRED, profit_pct=take_profit_pct),))
    if stop_loss_pct is not None:
        stop = stop_loss_pct if stop_loss_pct > 0 else None
        settings = replace(
            settings,
            stop_loss_pct=stop,
            stop_loss_price=None,
            trailing_stop=settings.trailing_stop and stop is not None,
        )
    return settings


def move_to_breakeven(deal: Deal, watch: ExitWatch) -> ExitWatch:
    return replace(watch, sl_price=_better_stop(deal.direction, watch.sl_price, breakeven_price(deal)))


def _better_stop(direction: Direction, a: Decimal | None, b: Decimal | None) -> Decimal | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b) if direction is Direction.LONG else min(a, b)


def watch_time(settings: ExitSettings, watch: ExitWatch, at: datetime) -> CloseReason | None:
    """A stop that has stayed breached for its timeout fires on the next event in time."""
    if watch.breached_since is not None and at >= watch.breached_since + timedelta(seconds=settings.stop_loss_timeout):
        return CloseReason.STOP_LOSS
    return None


def watch_price(
    settings: ExitSettings, watch: ExitWatch, direction: Direction, price: Decimal, at: datetime
) -> tuple[ExitWatch, CloseReason | None]:
    """Move trailing levels with ``price`` and say whether an exit fires at it."""
    if watch.sl_price is not None:
        peak, stop_pct = watch.sl_peak, settings.stop_loss_pct
        trails = settings.trailing_stop and stop_pct and peak is not None and price != peak
        if trails and peak is not None and stop_pct is not None and favourable(direction, price, peak):
            candidate = shifted(direction, price, -stop_pct)
            watch = replace(watch, sl_peak=price, sl_price=_better_stop(direction, watch.sl_price, candidate))
        sl = watch.sl_price
        if sl is not None and adverse(direction, price, sl):
            if settings.stop_loss_timeout <= 0:
                return watch, CloseReason.STOP_LOSS
            if watch.breached_since is None:
                watch = replace(watch, breached_since=at)
            elif watch_time(settings, watch, at):
                return watch, CloseReason.STOP_LOSS
        elif watch.breached_since is not None:
            watch = replace(watch, breached_since=None)
    deviation = settings.trailing_deviation
    if watch.trail_price is not None and deviation:
        top = watch.trail_peak
        if top is None:
            if favourable(direction, price, watch.trail_price):
                watch = replace(watch, trail_peak=price)
        elif favourable(direction, price, top):
            watch = replace(watch, trail_peak=price)
        elif adverse(direction, price, shifted(direction, top, -deviation)):
            return watch, CloseReason.TAKE_PROFIT
    return watch, None


def watch_interest(settings: ExitSettings, watch: ExitWatch, direction: Direction) -> Interest:
    """The exact levels at which ``watch_price``/``watch_time`` could change anything."""
    losing: list[Decimal] = []  # levels reached by moving against the position
    winning: list[Decimal] = []
    until: datetime | None = None
    if watch.sl_price is not None:
        losing.append(watch.sl_price)
        if watch.breached_since is not None:
            winning.append(watch.sl_price)
            until = watch.breached_since + timedelta(seconds=settings.stop_loss_timeout)
        if settings.trailing_stop and settings.stop_loss_pct and watch.sl_peak is not None:
            winning.append(watch.sl_peak)
    if watch.trail_price is not None and settings.trailing_deviation:
        if watch.trail_peak is None:
            winning.append(watch.trail_price)
        else:
            winning.append(watch.trail_peak)
            losing.append(shifted(direction, watch.trail_peak, -settings.trailing_deviation))
    if direction is Direction.LONG:
        return Interest(below=max(losing) if losing else None, above=min(winning) if winning else None, until=until)
    # A short's favourable levels are below: the highest of them is the first reached.
    return Interest(below=max(winning) if winning else None, above=min(losing) if losing else None, until=until)


def remaining_shares(settings: ExitSettings, done: int) -> tuple[Target, ...]:
    return settings.targets[done:]


def share_total(targets: tuple[Target, ...]) -> Decimal:
    return sum((t.share for t in targets), ZERO)
