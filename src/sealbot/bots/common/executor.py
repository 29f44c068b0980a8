"""The position executor: one deal's orders, fills and exits, shared by every bot.

A bot opens a ``Position``, places entry orders through ``place`` and feeds it fills,
cancels, prices and time. The executor keeps the take-profit ladder in line with the
position (re-placing it, at new prices, after every completed entry order), watches the
stop loss and trailing take profit, and runs the closing procedure:

1. cancel every live order of the deal and wait until the exchange confirms each one
   (a fill may still arrive meanwhile and is booked);
2. only then exit what is really left, at market, so an exit never exceeds what the deal
   holds (or owes, for a short) and a late fill is never forgotten;
3. the deal is closed when nothing tradable is left.

Client order ids come from (bot, deal, step) and a revision counter kept in the state,
so a replay of the same events yields the same ids.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from msgspec import Struct
from msgspec.structs import replace

from sealbot.bots.base import Interest
from sealbot.bots.common.exits import (
    ExitSettings,
    ExitWatch,
    Target,
    arm,
    move_to_breakeven,
    share_total,
    target_price,
    watch_interest,
    watch_price,
    watch_time,
)
from sealbot.bots.common.markets import tradable
from sealbot.bots.common.position import apply_fill, exposure
from sealbot.domain.commands import AlertLevel, CancelOrder, Command, DealChanged, PlaceOrder, RaiseAlert
from sealbot.domain.deals import CloseReason, Deal, DealStatus
from sealbot.domain.events import OrderFilled
from sealbot.domain.market import Direction, MarketRules, OrderType, Pair, Side
from sealbot.domain.money import ZERO, ceil_to_step
from sealbot.domain.orders import ClientOrderId, Order

_NO_WATCH = ExitWatch()
CLOSE_ATTEMPTS = 5  # market exits of one deal lost before the exchange saw them, before the user is asked


class Role(StrEnum):
    ENTRY = "entry"
    EXIT = "exit"  # a take-profit target's limit order
    CLOSE = "close"  # a market exit of the closing procedure


class Phase(StrEnum):
    ENTERING = "entering"  # entry order placed, nothing filled completely yet
    ACTIVE = "active"
    CLOSING = "closing"
    CLOSED = "closed"
    CANCELED = "canceled"


class LiveOrder(Struct, frozen=True):
    step: str
    role: Role
    side: Side
    type: OrderType
    amount: Decimal
    price: Decimal | None
    filled: Decimal = ZERO
    target: int = 0  # 1-based take-profit target index for EXIT orders


class Market(Struct, frozen=True):
    """What the executor needs to know about the venue: rules, fee rate, bot id."""

    bot_id: str
    rules: MarketRules
    fee_rate: Decimal


class Position(Struct, frozen=True):
    deal: Deal
    exits: ExitSettings
    phase: Phase = Phase.ENTERING
    orders: tuple[LiveOrder, ...] = ()
    canceling: tuple[str, ...] = ()
    watch: ExitWatch = _NO_WATCH
    targets_done: int = 0
    tp_rev: int = 0
    tp_stale: bool = False
    tp_lost: bool = False  # a target was cancelled outside the bot: the ladder goes back on the next price
    breakeven_moved: bool = False
    close_reason: CloseReason | None = None
    close_seq: int = 0
    close_failed: bool = False
    ref_price: Decimal | None = None

    @property
    def no(self) -> int:
        return self.deal.no

    @property
    def direction(self) -> Direction:
        return self.deal.direction

    @property
    def done(self) -> bool:
        return self.phase in (Phase.CLOSED, Phase.CANCELED)

    def order(self, step: str) -> LiveOrder | None:
        for order in self.orders:
            if order.step == step:
                return order
        return None


Result = tuple[Position, list[Command]]


def open_position(bot: str, no: int, pair: Pair, direction: Direction, exits: ExitSettings, at: datetime) -> Position:
    return Position(deal=Deal(bot=bot, no=no, pair=pair, direction=direction, opened_at=at), exits=exits)


def place(
    market: Market,
    pos: Position,
    step: str,
    role: Role,
    side: Side,
    amount: Decimal,
    price: Decimal | None,
    target: int = 0,
) -> tuple[Position, PlaceOrder]:
    """Record a live order and the command that sends it (limit when ``price`` is given)."""
    kind = OrderType.LIMIT if price is not None else OrderType.MARKET
    live = LiveOrder(step=step, role=role, side=side, type=kind, amount=amount, price=price, target=target)
    order = Order(
        client_id=ClientOrderId(market.bot_id, pos.no, step),
        pair=pos.deal.pair,
        side=side,
        type=kind,
        amount=amount,
        price=price,
    )
    return replace(pos, orders=(*pos.orders, live)), PlaceOrder(order)


def _without(pos: Position, step: str) -> Position:
    return replace(
        pos,
        orders=tuple(o for o in pos.orders if o.step != step),
        canceling=tuple(s for s in pos.canceling if s != step),
    )


def on_fill(market: Market, pos: Position, event: OrderFilled, at: datetime) -> Result:
    live = pos.order(event.fill.client_id.step)
    if live is None or pos.done:
        return pos, []
    pos = replace(pos, deal=apply_fill(pos.deal, event.fill))
    complete = event.remaining <= 0
    if complete:
        pos = _without(pos, live.step)
    else:
        filled = replace(live, filled=live.filled + event.fill.amount)
        pos = replace(pos, orders=tuple(filled if o.step == live.step else o for o in pos.orders))
    if live.role is Role.ENTRY and complete and pos.phase in (Phase.ENTERING, Phase.ACTIVE):
        pos = _entry_changed(pos)
    elif live.role is Role.EXIT and complete:
        pos = replace(pos, targets_done=max(pos.targets_done, live.target))
        if pos.exits.breakeven and not pos.breakeven_moved:
            pos = replace(pos, breakeven_moved=True, watch=move_to_breakeven(pos.deal, pos.watch))
        if pos.phase is Phase.ACTIVE and _all_targets_filled(pos):
            # Whatever is left (rounding dust, or a safety order that filled while the
            # ladder was being replaced) is sized like a take-profit exit at this price.
            pos = replace(pos, phase=Phase.CLOSING, close_reason=CloseReason.TAKE_PROFIT, ref_price=event.fill.price)
    pos, commands = settle(market, pos, at)
    return pos, [DealChanged(pos.deal), *commands] if not pos.done else commands


def _entry_changed(pos: Position) -> Position:
    """A completed entry order moved the average: re-arm exits and refresh the ladder."""
    watch = arm(pos.exits, pos.deal, pos.watch, pos.breakeven_moved)
    return replace(pos, phase=Phase.ACTIVE, watch=watch, tp_stale=True)


def _all_targets_filled(pos: Position) -> bool:
    limits = len(pos.exits.targets) - (1 if pos.exits.trailing_deviation else 0)
    return bool(pos.exits.targets) and pos.targets_done >= limits and not pos.exits.trailing_deviation


def on_canceled(market: Market, pos: Position, step: str, at: datetime, rejected: str | None = None,
                unsent: bool = False) -> Result:
    """The exchange confirmed a cancel (ours, or its own: expiry, rejection). ``unsent``:
    the order never reached the exchange (the engine gave up sending it: a crash, an
    outage); a closing order so lost is placed again, at market, up to ``CLOSE_ATTEMPTS``."""
    live = pos.order(step)
    if live is None or pos.done:
        return pos, []
    asked = step in pos.canceling
    pos = _without(pos, step)
    alerts: list[Command] = []
    if rejected is not None:
        alerts.append(RaiseAlert(AlertLevel.WARNING, "order_rejected", f"deal {pos.no} order {step}: {rejected}"))
    if live.role is Role.ENTRY and pos.phase is Phase.ENTERING and not asked:
        if exposure(pos.deal) > 0:
            pos = _entry_changed(pos)
        else:
            deal = replace(pos.deal, status=DealStatus.CANCELED, closed_at=at, close_reason=CloseReason.CANCELED)
            pos = replace(pos, phase=Phase.CANCELED, deal=deal)
            return pos, [*alerts, DealChanged(pos.deal)]
    elif live.role is Role.ENTRY and live.filled > 0 and pos.phase is Phase.ACTIVE:
        pos = _entry_changed(pos)
        if not asked and rejected is None:  # cancelled outside the bot: see just below
            pos = replace(pos, tp_stale=False, tp_lost=True)
    elif live.role is Role.EXIT and not asked and rejected is None and pos.phase is Phase.ACTIVE:
        # Cancelled outside the bot (a kill switch, a stop, a hand on the exchange): the
        # deal still holds what the target was to sell. Placed again on the next price
        # the running bot sees, not now: a stopped bot may place nothing, and a refusal
        # of it would come straight back here. Without this a deal resumed after a kill
        # switch had no take profit at all.
        pos = replace(pos, tp_lost=True)
    elif live.role is Role.CLOSE and not asked and rejected is not None and (not unsent or
                                                                          pos.close_seq >= CLOSE_ATTEMPTS):
        # Refused by the exchange (or never sent, again and again): retrying blindly would
        # repeat the cause, so the deal waits for its user. Merely never sent: what the deal
        # holds is still to be sold, and settle below places the exit again.
        pos = replace(pos, close_failed=True)
        alerts.append(RaiseAlert(AlertLevel.CRITICAL, "close_failed", f"deal {pos.no}: exit order refused"))
    pos, commands = settle(market, pos, at)
    return pos, [*alerts, *commands]


def on_price(market: Market, pos: Position, price: Decimal, at: datetime) -> Result:
    if pos.phase is not Phase.ACTIVE or exposure(pos.deal) <= 0:
        return pos, []
    replaced: list[Command] = []
    if pos.tp_lost:
        pos, replaced = settle(market, replace(pos, tp_lost=False, tp_stale=True), at)
    watch, reason = watch_price(pos.exits, pos.watch, pos.direction, price, at)
    if watch is not pos.watch:  # most prices move nothing: skip the copy
        pos = replace(pos, watch=watch)
    if reason is None:
        return pos, replaced
    pos, commands = close(market, pos, reason, price, at)
    return pos, [*replaced, *commands]


def on_time(market: Market, pos: Position, at: datetime) -> Result:
    if pos.phase is Phase.ACTIVE and watch_time(pos.exits, pos.watch, at):
        return close(market, pos, CloseReason.STOP_LOSS, pos.watch.sl_price, at)
    return pos, []


def close(market: Market, pos: Position, reason: CloseReason, ref_price: Decimal | None, at: datetime) -> Result:
    """Start the closing procedure (idempotent while already closing)."""
    if pos.done:
        return pos, []
    if pos.phase is Phase.CLOSING and not pos.close_failed:
        return pos, []
    pos = replace(
        pos,
        phase=Phase.CLOSING,
        close_reason=reason,
        close_failed=False,
        ref_price=ref_price if ref_price is not None else pos.ref_price,
    )
    return settle(market, pos, at)


def edit(market: Market, pos: Position, exits: ExitSettings, at: datetime) -> Result:
    """New take profit / stop loss for a running deal: re-place the ladder only if the
    take profit changed, re-arm the stop only if the stop changed. An edit of one must
    not touch the other: a stop-only edit after target 1 filled would otherwise sell
    target 1 again, and a take-profit-only edit would drop a stop that had trailed up."""
    if pos.done or pos.phase is Phase.CLOSING:
        return pos, []
    old = pos.exits
    ladder_changed = (exits.targets, exits.trailing_deviation, exits.profit_basis, exits.profit_in_base) != (
        old.targets, old.trailing_deviation, old.profit_basis, old.profit_in_base)
    stop_changed = (exits.stop_loss_pct, exits.stop_loss_price, exits.trailing_stop, exits.stop_loss_timeout) != (
        old.stop_loss_pct, old.stop_loss_price, old.trailing_stop, old.stop_loss_timeout)
    pos = replace(pos, exits=exits, targets_done=0 if ladder_changed else pos.targets_done)
    if pos.phase is Phase.ACTIVE:
        watch = pos.watch
        if stop_changed:
            fresh = arm(exits, pos.deal, None, pos.breakeven_moved)
            watch = replace(watch, sl_price=fresh.sl_price, sl_peak=fresh.sl_peak, breached_since=None)
        pos = replace(pos, watch=watch, tp_stale=pos.tp_stale or ladder_changed)
    return settle(market, pos, at)


def cancel_deal(pos: Position, at: datetime) -> Result:
    """Forget the deal (keeping what it bought): cancel its orders, mark it canceled."""
    if pos.done:
        return pos, []
    commands: list[Command] = [
        CancelOrder(ClientOrderId(pos.deal.bot, pos.no, o.step)) for o in pos.orders if o.step not in pos.canceling
    ]
    deal = replace(pos.deal, status=DealStatus.CANCELED, closed_at=at, close_reason=CloseReason.CANCELED)
    pos = replace(pos, phase=Phase.CANCELED, deal=deal, orders=(), canceling=())
    return pos, [*commands, DealChanged(deal)]


def settle(market: Market, pos: Position, at: datetime) -> Result:
    """Bring orders in line with the phase: refresh the ladder, or advance the close."""
    if pos.phase is Phase.ACTIVE and pos.tp_stale:
        return _refresh_ladder(market, pos)
    if pos.phase is Phase.CLOSING:
        return _advance_close(market, pos, at)
    return pos, []


def _cancel(pos: Position, orders: list[LiveOrder]) -> Result:
    fresh = [o for o in orders if o.step not in pos.canceling]
    commands: list[Command] = [CancelOrder(ClientOrderId(pos.deal.bot, pos.no, o.step)) for o in fresh]
    return replace(pos, canceling=(*pos.canceling, *(o.step for o in fresh))), commands


def _refresh_ladder(market: Market, pos: Position) -> Result:
    exits_live = [o for o in pos.orders if o.role is Role.EXIT]
    if exits_live:
        return _cancel(pos, exits_live)
    pos = replace(pos, tp_stale=False, tp_lost=False)  # the whole ladder goes out again
    remaining = pos.exits.targets[pos.targets_done :]
    if not remaining or exposure(pos.deal) <= 0:
        return pos, []
    commands: list[Command] = []
    rev = pos.tp_rev
    pos = replace(pos, tp_rev=rev + 1)
    trailing = bool(pos.exits.trailing_deviation)
    limits = remaining[:-1] if trailing else remaining
    if trailing:
        trail = target_price(pos.exits, pos.deal, remaining[-1])
        pos = replace(pos, watch=replace(pos.watch, trail_price=trail, trail_peak=None))
    amounts = _ladder_amounts(market, pos, remaining, limits)
    carry = ZERO
    for index, (amount, price) in enumerate(amounts, start=pos.targets_done + 1):
        amount += carry
        if not tradable(market.rules, amount, price):
            carry = amount
            continue
        carry = ZERO
        step = f"tp{index}" if rev == 0 else f"tp{index}.{rev}"
        pos, command = place(market, pos, step, Role.EXIT, pos.direction.exit_side, amount, price, target=index)
        commands.append(command)
    if carry > 0 and not trailing:
        # What no target can sell under the exchange's rules (a fee in base and the step
        # took a 5 USDT deal below the 5 minimum) stays in the deal with no take profit:
        # say so, rather than leave the deal open and silent.
        commands.append(RaiseAlert(AlertLevel.WARNING, "take_profit_too_small",
                                   f"deal {pos.no}: {carry} {pos.deal.pair.base} is below the exchange minimum "
                                   f"for a take profit order; the deal keeps it (add funds or close it by hand)"))
    return pos, commands


def _ladder_amounts(
    market: Market, pos: Position, remaining: tuple[Target, ...], limits: tuple[Target, ...]
) -> list[tuple[Decimal, Decimal]]:
    """(amount, rounded price) per limit target; shares renormalised over what remains."""
    rules, deal = market.rules, pos.deal
    total_share = share_total(remaining)
    side = pos.direction.exit_side
    out: list[tuple[Decimal, Decimal]] = []
    available = exit_capacity(market, deal)
    used = ZERO
    for i, target in enumerate(limits):
        raw = target_price(pos.exits, deal, target)
        if raw is None or raw <= 0:
            out.append((ZERO, ZERO))
            continue
        price = rules.price(raw, side)
        fraction = target.share / total_share
        is_last = i == len(limits) - 1 and len(limits) == len(remaining)
        if pos.exits.profit_in_base:
            amount = _base_profit_amount(market, deal, price) * fraction
            amount = rules.amount(amount) if deal.direction is Direction.LONG else ceil_to_step(amount, rules.step_size)
        elif is_last:
            amount = available - used
        else:
            amount = rules.amount(available * fraction)
        amount = max(ZERO, min(amount, available - used)) if deal.direction is Direction.LONG else amount
        used += amount
        out.append((amount, price))
    return out


def exit_capacity(market: Market, deal: Deal) -> Decimal:
    """Base a full exit moves: all held base for a long; for a short, what buys back the
    owed base after the exchange takes its fee out of the base received."""
    owed = exposure(deal)
    if owed <= 0:
        return ZERO
    if deal.direction is Direction.LONG:
        return market.rules.amount(owed)
    return ceil_to_step(owed / (1 - market.fee_rate), market.rules.step_size)


def _base_profit_amount(market: Market, deal: Deal, price: Decimal) -> Decimal:
    """Profit kept in base: a long sells only what recovers its net cost; a short buys
    back with all the quote it still holds from the entry."""
    if deal.direction is Direction.LONG:
        cost = deal.spent + deal.fees_quote - deal.received
        if cost <= 0:
            return ZERO
        return min(exposure(deal), cost / (price * (1 - market.fee_rate)))
    quote_left = deal.received - deal.fees_quote - deal.spent
    return quote_left / price if quote_left > 0 else ZERO


def _advance_close(market: Market, pos: Position, at: datetime) -> Result:
    others = [o for o in pos.orders if o.role is not Role.CLOSE]
    if others:
        return _cancel(pos, others)
    if pos.orders or pos.close_failed:
        return pos, []  # our exit order is still working, or failed and awaits the user
    amount = _close_amount(market, pos)
    ref = pos.ref_price if pos.ref_price is not None else pos.deal.average_entry
    if ref is not None and tradable(market.rules, amount, ref):
        seq = pos.close_seq + 1
        name = {CloseReason.STOP_LOSS: "sl", CloseReason.TAKE_PROFIT: "tpx"}.get(pos.close_reason or CloseReason.MANUAL)
        step = (name or "close") + ("" if seq == 1 else str(seq))
        pos = replace(pos, close_seq=seq)
        pos, command = place(market, pos, step, Role.CLOSE, pos.direction.exit_side, amount, None)
        return pos, [command]
    deal = pos.deal.close(at, pos.close_reason or CloseReason.MANUAL)
    pos = replace(pos, phase=Phase.CLOSED, deal=deal)
    return pos, [DealChanged(deal)]


def _close_amount(market: Market, pos: Position) -> Decimal:
    deal = pos.deal
    if pos.exits.profit_in_base and pos.close_reason is CloseReason.TAKE_PROFIT and pos.ref_price:
        raw = _base_profit_amount(market, deal, pos.ref_price)
        if deal.direction is Direction.LONG:
            return market.rules.amount(raw)
        return ceil_to_step(raw, market.rules.step_size)
    return exit_capacity(market, deal)


def interest(pos: Position) -> Interest:
    if pos.phase is not Phase.ACTIVE or exposure(pos.deal) <= 0:
        return Interest()
    if pos.tp_lost:
        return Interest.ALWAYS  # the next price places the ladder again
    return watch_interest(pos.exits, pos.watch, pos.direction)
