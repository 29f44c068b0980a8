"""The signal bot's state machine.

Entries are market orders sized from the signal or the config; one position per pair
and direction rules are enforced here, not by the sender. Exits close what the deal
holds (never more): a long sells its net coins rounded down to the step, a short buys
back what it owes rounded down. An exit that arrives while the entry is still filling
waits for it. Signals seen before (same ``signal_id``) are ignored, so a retried
webhook cannot double an entry. Candles never change this bot: ``interest`` is empty.

An order the engine gave up sending (``OrderWasRejected.unsent``: a crash or an outage
kept it from the exchange) is not a refusal. An exit so lost is placed again at once
as the next ``x<n>``: the position still holds what the exit was to trade, and the
decision to leave it stands. After ``CLOSE_ATTEMPTS`` lost sends of one exit it is
handled like a refusal (alert, the position stays open for the next exit). An entry or
an add-funds order so lost is not placed again: the signal (or the click) it acted on
is minutes old by then, and a trader would not buy on it at whatever the price is now.

With ``reverse_on_opposite_entry`` an entry against an open position is a reversal:
the position is closed at market (its normal exit) and the entry is kept on it
(``Position.entry_after_close``) until that exit has filled completely; only then is
it sized and checked like any entry, and placed under the next deal number. While the
close is working the pair's latest signal decides: another entry (either direction)
replaces the pending one, an exit, ``close_all`` or *close at market* drops it (the
close goes on). An exit that does not complete (refused, cancelled, lost
``CLOSE_ATTEMPTS`` times) drops it with an alert: the opposite position never opens
while the old one still holds coins.
"""

from __future__ import annotations

import dataclasses  # the domain's events (SignalReceived) are dataclasses
from datetime import datetime
from decimal import Decimal

from msgspec.structs import replace  # the bot's state (Position, State) and deals are msgspec structs

from sealbot.bots.base import Interest
from sealbot.bots.common.executor import CLOSE_ATTEMPTS
from sealbot.bots.common.position import apply_fill
from sealbot.bots.grid.fills import effect
from sealbot.bots.signal.config import Config
from sealbot.bots.signal.state import SEEN_KEPT, Balance, Position, State
from sealbot.domain import (
    AddFunds,
    AlertLevel,
    AmountType,
    BalanceReported,
    CancelDeal,
    ClientOrderId,
    CloseAtMarket,
    CloseReason,
    Command,
    Deal,
    DealChanged,
    DealStatus,
    Direction,
    Event,
    Fill,
    Order,
    OrderCanceled,
    OrderFilled,
    OrderType,
    OrderWasRejected,
    Pair,
    PlaceOrder,
    RaiseAlert,
    SignalAction,
    SignalReceived,
)
from sealbot.domain.money import HUNDRED, ZERO

Result = tuple[State, list[Command]]
ENTRY_STEP = "e"


def initial_state(config: Config) -> State:
    return State()


def interest(config: Config, state: State) -> Interest:
    """Only signals and fills move this bot; no price level ever does."""
    return Interest()


def step(config: Config, state: State, event: Event) -> Result:
    match event:
        case SignalReceived():
            return _on_signal(config, state, event)
        case OrderFilled(fill, remaining) if fill.client_id.bot == config.bot_id:
            return _on_fill(config, state, fill, remaining)
        case OrderCanceled(client_id, at) if client_id.bot == config.bot_id:
            return _on_gone(config, state, client_id, None, at)
        case OrderWasRejected(client_id, reason, at, unsent) if client_id.bot == config.bot_id:
            return _on_gone(config, state, client_id, reason, at, unsent)
        case BalanceReported(asset, free, _):
            balances = [b for b in state.balances if b.asset != asset]
            balances.append(Balance(asset, free))
            return replace(state, balances=tuple(sorted(balances, key=lambda b: b.asset))), []
        case CloseAtMarket(deal, at):
            position = _by_deal(state, deal)
            if position is None:
                return state, []
            state, position, notes = _cancel_reversal(state, position, "close at market")
            state, commands = _exit(config, state, position, at, CloseReason.MANUAL)
            return state, [*notes, *commands]
        case AddFunds():
            return _add_funds(config, state, event)
        case CancelDeal(deal, at):
            position = _by_deal(state, deal)
            if position is None:
                return state, []
            closed = position.deal.close(at, CloseReason.CANCELED)
            dropped = _reversal_dropped(position, f"deal {deal} was cancelled")
            closed = replace(closed, status=DealStatus.CANCELED)
            return _without(state, position), [DealChanged(closed), *dropped]
    return state, []


# --- signals ----------------------------------------------------------------------


def _on_signal(cfg: Config, state: State, signal: SignalReceived) -> Result:
    if signal.signal_id in state.seen:
        return state, []
    state = replace(state, seen=(*state.seen, signal.signal_id)[-SEEN_KEPT:])
    match signal.action:
        case SignalAction.ENTER_LONG:
            return _enter(cfg, state, signal, Direction.LONG)
        case SignalAction.ENTER_SHORT:
            return _enter(cfg, state, signal, Direction.SHORT)
        case SignalAction.EXIT_LONG | SignalAction.EXIT_SHORT:
            direction = Direction.LONG if signal.action is SignalAction.EXIT_LONG else Direction.SHORT
            rules = cfg.rules_for(signal.pair)
            position = _by_pair(state, rules.pair) if rules else None
            if position is not None and position.entry_after_close is not None:
                # a reversal is closing this position: the exit is the latest word
                state, position, notes = _cancel_reversal(state, position, signal.action.value)
                if position.deal.direction is not direction:
                    return state, notes
                state, closing = _exit(cfg, state, position, signal.at)
                return state, [*notes, *closing]
            if position is None or position.deal.direction is not direction:
                return state, [_alert("signal.nothing_to_exit", f"{signal.action.value}: no {direction.value} "
                                      "position on that pair")]
            return _exit(cfg, state, position, signal.at)
        case SignalAction.CLOSE_ALL:
            commands: list[Command] = []
            for position in state.positions:
                state, position, notes = _cancel_reversal(state, position, signal.action.value)
                state, more = _exit(cfg, state, position, signal.at)
                commands += [*notes, *more]
            return state, commands
    return state, [_alert("signal.unsupported", f"{signal.action.value} is not an action of a signal bot")]


def _enter(cfg: Config, state: State, signal: SignalReceived, direction: Direction) -> Result:
    rules = cfg.rules_for(signal.pair)
    existing = _by_pair(state, rules.pair) if rules else None
    if existing is not None and (existing.entry_after_close is not None or (
            cfg.reverse_on_opposite_entry and direction is not existing.deal.direction)):
        return _reverse(cfg, state, existing, signal)
    if not (cfg.long_enabled if direction is Direction.LONG else cfg.short_enabled):
        return state, [_alert("signal.direction_disabled", f"{direction.value} entries are disabled")]
    if rules is None:
        return state, [_alert("signal.unknown_pair", "the signal's pair is not one of the bot's markets")]
    if existing is not None:
        return state, [_alert("signal.position_open", f"a {existing.deal.direction.value} position on "
                              f"{rules.pair} is already open: one position per pair")]
    if cfg.max_open_positions is not None and len(state.positions) >= cfg.max_open_positions:
        return state, [_alert("signal.max_positions", f"{cfg.max_open_positions} positions already open")]
    amount, problem = _entry_amount(cfg, state, signal, rules.pair)
    if problem:
        return state, [_alert("signal.not_sized", problem)]
    amount = rules.amount(amount)
    price = signal.trigger_price
    if amount <= 0 or (rules.min_amount and amount < rules.min_amount) or (
            price is not None and rules.min_notional and amount * price < rules.min_notional):
        return state, [_alert("signal.too_small", f"an entry of {amount} {rules.pair.base} is below the "
                              "market's minimum")]
    deal = Deal(bot=cfg.bot_id, no=state.next_deal, pair=rules.pair, direction=direction, opened_at=signal.at)
    position = Position(deal=deal, entry_amount=amount)
    order = Order(client_id=ClientOrderId(cfg.bot_id, deal.no, ENTRY_STEP), pair=rules.pair,
                  side=direction.entry_side, type=OrderType.MARKET, amount=amount)
    state = replace(state, positions=(*state.positions, position), next_deal=state.next_deal + 1)
    return state, [PlaceOrder(order), DealChanged(deal)]


def _entry_amount(cfg: Config, state: State, signal: SignalReceived, pair: Pair) -> tuple[Decimal, str | None]:
    """Base amount of an entry, before rounding; or why it cannot be sized."""
    amount, kind = cfg.amount, cfg.amount_type
    if cfg.use_signal_amount and signal.amount is not None:
        amount, kind = signal.amount, signal.amount_type or AmountType.QUOTE
    price = signal.trigger_price
    if kind is AmountType.BASE:
        base = amount
    elif price is None:
        return ZERO, f"sizing in {kind.value} needs the signal's trigger_price"
    elif kind is AmountType.QUOTE:
        base = amount / price
    else:
        if amount > HUNDRED:
            return ZERO, "a percentage of the balance above 100"
        free = next((b.free for b in state.balances if b.asset == pair.quote), None)
        if free is None:
            return ZERO, f"no {pair.quote} balance reported yet for a percentage entry"
        base = free * amount / HUNDRED / price
    if cfg.max_position is not None:
        if price is None:
            return ZERO, "max_position needs the signal's trigger_price to check the entry"
        base = min(base, cfg.max_position / price)
    return base, None


# --- reversals --------------------------------------------------------------------


def _reverse(cfg: Config, state: State, position: Position, signal: SignalReceived) -> Result:
    """Close ``position`` at market and keep ``signal`` to act on once the exit has
    filled. A reversal already under way keeps its close and takes the latest entry."""
    pending = position.entry_after_close
    position = replace(position, entry_after_close=signal)
    state = _replace(state, position)
    if pending is not None:
        return state, [RaiseAlert(AlertLevel.INFO, "signal.reversal_replaced",
                                  f"{signal.action.value} replaces the pending {pending.action.value} on "
                                  f"{position.deal.pair}, placed once the {position.deal.direction.value} "
                                  "position is closed")]
    return _exit(cfg, state, position, signal.at)


def _cancel_reversal(state: State, position: Position, why: str) -> tuple[State, Position, list[Command]]:
    """Forget a reversal's pending entry because a later signal (or a click) said
    otherwise; the close itself goes on."""
    pending = position.entry_after_close
    if pending is None:
        return state, position, []
    position = replace(position, entry_after_close=None)
    alert = RaiseAlert(AlertLevel.INFO, "signal.reversal_cancelled",
                       f"{why}: the pending {pending.action.value} on {position.deal.pair} is dropped; the "
                       f"{position.deal.direction.value} position's close goes on")
    return _replace(state, position), position, [alert]


def _reversal_dropped(position: Position, why: str) -> list[Command]:
    """The alert for a reversal whose close did not happen: its entry is not placed."""
    pending = position.entry_after_close
    if pending is None:
        return []
    return [_alert("signal.reversal_stopped", f"{pending.action.value} on {position.deal.pair} is dropped: {why}")]


def _closed(cfg: Config, state: State, position: Position, deal: Deal, at: datetime,
            notes: tuple[Command, ...] = ()) -> Result:
    """``position`` is closed by its exit (``deal`` is the closed deal): forget it, then
    place a reversal's entry, sized and checked now, or say why it is not placed."""
    state = _without(state, position)
    commands: list[Command] = [*notes, DealChanged(deal)]
    signal = position.entry_after_close
    if signal is None:
        return state, commands
    direction = Direction.LONG if signal.action is SignalAction.ENTER_LONG else Direction.SHORT
    state, more = _enter(cfg, state, dataclasses.replace(signal, at=at), direction)
    if not any(isinstance(c, PlaceOrder) for c in more):
        why = "; ".join(c.message for c in more if isinstance(c, RaiseAlert))
        more = [_alert("signal.reversal_stopped", f"the {deal.direction.value} position on {deal.pair} is "
                       f"closed; the reversal stops there ({signal.action.value} not placed: {why})")]
    return state, [*commands, *more]


# --- exits ------------------------------------------------------------------------


def _exit(cfg: Config, state: State, position: Position, at: datetime,
          reason: CloseReason = CloseReason.SIGNAL, lost: int = 0) -> Result:
    """Close what the position holds at market, as the next ``x<n>``. ``lost``: sends of
    this same exit that never reached the exchange (0 for a new decision to exit)."""
    if position.exit_amount is not None:
        return state, []  # an exit is already working
    if not position.entry_done or position.add_open:
        return _replace(state, replace(position, exit_requested=True, exit_reason=reason)), []
    rules = cfg.rules_for(position.deal.pair)
    assert rules is not None
    amount = rules.amount(position.held)
    if amount <= 0 or (rules.min_amount and amount < rules.min_amount):
        closed = position.deal.close(at, reason)
        alert = _alert("signal.dust", f"{position.held} {position.deal.pair.base} left below the step; deal closed")
        return _closed(cfg, state, position, closed, at, (alert,))
    attempt = position.exit_attempt + 1
    order = Order(client_id=ClientOrderId(cfg.bot_id, position.deal.no, f"x{attempt}"), pair=position.deal.pair,
                  side=position.deal.direction.exit_side, type=OrderType.MARKET, amount=amount)
    position = replace(position, exit_attempt=attempt, exit_amount=amount, exit_filled=ZERO, exit_requested=False,
                       exit_reason=reason, exit_lost=lost)
    return _replace(state, position), [PlaceOrder(order)]


# --- fills and cancels ------------------------------------------------------------


def _on_fill(cfg: Config, state: State, fill: Fill, remaining: Decimal) -> Result:
    position = _by_deal(state, fill.client_id.deal)
    if position is None:
        return state, [_alert("signal.unknown_fill", f"fill for {fill.client_id} matches no open position")]
    moved = effect(fill).base  # + coins in, - coins out
    exposure = moved if position.deal.direction is Direction.LONG else -moved
    deal = apply_fill(position.deal, fill)
    step_name = fill.client_id.step
    if step_name == ENTRY_STEP or step_name == f"a{position.adds}":
        if step_name == ENTRY_STEP:
            position = replace(position, entry_filled=position.entry_filled + fill.amount, entry_done=remaining <= 0)
        else:
            position = replace(position, add_open=remaining > 0)
        position = replace(position, deal=deal, held=position.held + exposure)
        state = _replace(state, position)
        if position.entry_done and not position.add_open and position.exit_requested:
            state, commands = _exit(cfg, state, position, fill.at, position.exit_reason)
            return state, [DealChanged(deal), *commands]
        return state, [DealChanged(deal)]
    position = replace(position, deal=deal, held=position.held + exposure,
                       exit_filled=position.exit_filled + fill.amount)
    if remaining > 0:
        return _replace(state, position), [DealChanged(deal)]
    return _closed(cfg, state, position, deal.close(fill.at, position.exit_reason), fill.at)


def _on_gone(cfg: Config, state: State, client_id: ClientOrderId, reason: str | None, at: datetime,
             unsent: bool = False) -> Result:
    """An order is gone without (fully) trading: cancelled, refused, or never sent
    (``unsent``: only an exit is then placed again, see the module's docstring)."""
    position = _by_deal(state, client_id.deal)
    if position is None:
        return state, []
    why = reason or "canceled"
    exit_step = client_id.step == f"x{position.exit_attempt}" and position.exit_amount is not None
    if exit_step and unsent and position.exit_lost + 1 < CLOSE_ATTEMPTS:
        position = replace(position, exit_amount=None)
        state, more = _exit(cfg, _replace(state, position), position, at, position.exit_reason,
                            lost=position.exit_lost + 1)
        again = [str(c.order.client_id) for c in more if isinstance(c, PlaceOrder)]
        if again:
            why += f"; placed again as {again[0]}"
        return state, [_alert("signal.order_gone", f"{client_id}: {why}"), *more]
    if unsent and exit_step:
        why += f" ({CLOSE_ATTEMPTS} sends of this exit never reached the exchange)"
    elif unsent and client_id.step in (ENTRY_STEP, f"a{position.adds}"):
        why += " (not placed again: the moment it was decided on is gone)"
    commands: list[Command] = [_alert("signal.order_gone", f"{client_id}: {why}")]
    if client_id.step == ENTRY_STEP and not position.entry_done:
        if position.entry_filled == 0:
            closed = replace(position.deal.close(at, CloseReason.CANCELED), status=DealStatus.CANCELED)
            dropped = _reversal_dropped(position, f"deal {position.deal.no} was cancelled (its entry is gone)")
            return _without(state, position), [*commands, DealChanged(closed), *dropped]
        position = replace(position, entry_done=True)
    elif client_id.step == f"a{position.adds}" and position.add_open:
        position = replace(position, add_open=False)
    elif client_id.step == f"x{position.exit_attempt}":
        if position.exit_amount is None:  # told again about an exit already handled
            return state, commands
        # The position the user (or their strategy) asked to close stays open, holding
        # coins with nothing working to sell them: as a refused DCA close, it is critical
        # (delivered through the user's channels), not a warning in the list.
        commands = [_alert("signal.order_gone", f"{client_id}: {why}; the {position.deal.direction.value} "
                           f"position stays open with {position.held} {position.deal.pair.base}",
                           AlertLevel.CRITICAL)]
        commands += _reversal_dropped(position, f"the exit {client_id} did not complete; the "
                                      f"{position.deal.direction.value} position stays open with "
                                      f"{position.held} {position.deal.pair.base}")
        return _replace(state, replace(position, exit_amount=None, entry_after_close=None)), commands
    else:
        return state, commands
    state = _replace(state, position)
    if position.entry_done and not position.add_open and position.exit_requested:
        state, more = _exit(cfg, state, position, at, position.exit_reason)
        commands += more
    return state, commands


# --- manual add funds -------------------------------------------------------------


def _add_funds(cfg: Config, state: State, event: AddFunds) -> Result:
    """Buy more into a long (sell more into a short) at market: ``a1``, ``a2``…"""
    position = _by_deal(state, event.deal)
    if position is None or not position.entry_done or position.add_open or position.exit_amount is not None:
        return state, [_alert("signal.add_refused", f"deal {event.deal} has no settled open position to add to")]
    rules = cfg.rules_for(position.deal.pair)
    assert rules is not None
    price = event.price
    if event.amount_type is AmountType.BASE:
        base = event.amount
    elif event.amount_type is AmountType.QUOTE and price is not None:
        base = event.amount / price
    else:
        return state, [_alert("signal.add_refused", "add funds needs a base amount, or a quote amount with a price")]
    if cfg.max_position is not None:
        if price is None:
            return state, [_alert("signal.add_refused", "max_position needs the price to check the addition")]
        base = min(base, max(cfg.max_position / price - position.held, ZERO))
    amount = rules.amount(base)
    if amount <= 0 or (rules.min_amount and amount < rules.min_amount) or (
            price is not None and rules.min_notional and amount * price < rules.min_notional):
        return state, [_alert("signal.add_refused", "the addition is below the market's minimum (or max_position)")]
    adds = position.adds + 1
    order = Order(client_id=ClientOrderId(cfg.bot_id, position.deal.no, f"a{adds}"), pair=position.deal.pair,
                  side=position.deal.direction.entry_side, type=OrderType.MARKET, amount=amount)
    return _replace(state, replace(position, adds=adds, add_open=True)), [PlaceOrder(order)]


# --- helpers ----------------------------------------------------------------------


def _by_pair(state: State, pair: Pair) -> Position | None:
    return next((p for p in state.positions if p.deal.pair == pair), None)


def _by_deal(state: State, no: int) -> Position | None:
    return next((p for p in state.positions if p.deal.no == no), None)


def _replace(state: State, position: Position) -> State:
    return replace(state, positions=tuple(position if p.deal.no == position.deal.no else p
                                          for p in state.positions))


def _without(state: State, position: Position) -> State:
    return replace(state, positions=tuple(p for p in state.positions if p.deal.no != position.deal.no))


def _alert(code: str, message: str, level: AlertLevel = AlertLevel.WARNING) -> RaiseAlert:
    return RaiseAlert(level, code, message)

