"""The grid bot's state machine: ``step(config, state, event) -> (state, commands)``.

Start: on the first price ``p``, every interval whose lower line is above ``p`` is
funded by one market buy (its coins wait to be sold at its upper line) and every other
interval places a limit buy at its lower line. Then each filled buy places the sell one
line up and each filled sell re-places the buy: one cycle, one grid profit.

Trailing up (3Commas): when the price reaches one line above the top, the lowest
(unfilled) buy is cancelled and a buy is placed at the old top line; the grid moves,
its size does not. Trailing down (3Commas): when every buy has filled and the price is
below the bottom line, one more buy is placed a line lower, down to
``trailing_down_stop_price``; the sells above stay, so it needs extra funds (see
``preview``). Stops: the lower stop triggers when a candle's low reaches
``lower_stop_loss_price`` (which trails up with the grid), the upper one when its high reaches
``upper_stop_loss_price``; ``stop_bot`` cancels the grid's orders and keeps the coins,
``stop_bot_and_sell`` then sells every coin the grid holds at market (only once every
cancel is confirmed, so it can never sell coins a resting sell still reserves).

An interval's order that never reached the exchange (``OrderWasRejected.unsent``: the
engine gave up sending it after a crash or an outage) is placed again at once, same
side, line and amount, under the next cycle number, up to ``LEVEL_SEND_ATTEMPTS`` sends;
a resting limit order placed late is the order the grid wanted all along. Only then,
or when the exchange itself refused the order, is the interval left idle with an alert.
The closing market sell so lost is sent again too (``close2``…), up to the executor's
``CLOSE_ATTEMPTS``, as a deal's exit is; the opening market buy is not.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from msgspec.structs import replace

from sealbot.bots.base import Interest
from sealbot.bots.common.executor import CLOSE_ATTEMPTS
from sealbot.bots.common.position import apply_fill
from sealbot.bots.grid.config import Config, StopAction
from sealbot.bots.grid.fills import effect
from sealbot.bots.grid.levels import level_amount, level_price, max_slots, trailing_down_levels
from sealbot.bots.grid.state import (
    CLOSE_STEP,
    DEAL_NO,
    INIT_STEP,
    MarketOrder,
    Phase,
    Slot,
    State,
    order_id,
    parse_step,
)
from sealbot.domain import (
    AlertLevel,
    CancelDeal,
    CancelOrder,
    CandleClosed,
    ClientOrderId,
    CloseAtMarket,
    CloseReason,
    Command,
    Deal,
    DealChanged,
    Direction,
    Event,
    Fill,
    Order,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderType,
    OrderWasRejected,
    PlaceOrder,
    PriceTicked,
    RaiseAlert,
    Side,
    StopBot,
)
from sealbot.domain.money import ZERO

Result = tuple[State, list[Command]]
# Sends of one interval's order before a loss is treated as a refusal. The same figure
# as the executor's CLOSE_ATTEMPTS (a deal's market exit) but a separate constant: it
# caps a resting limit order, whose late placement costs nothing, not an exit.
LEVEL_SEND_ATTEMPTS = 5


def initial_state(config: Config) -> State:
    return State(lo=0, hi=config.intervals)


def step(config: Config, state: State, event: Event) -> Result:
    """Advance the grid by one event. Pure: same inputs, same outputs."""
    match event:
        case CandleClosed(candle) if candle.pair == config.pair:
            return _on_price(config, state, candle.low, candle.high, candle.close, event.at)
        case PriceTicked(pair, price, at) if pair == config.pair:
            return _on_price(config, state, price, price, price, at)
        case OrderFilled(fill, remaining) if _ours(config, fill.client_id):
            return _on_fill(config, state, fill, remaining)
        case OrderCanceled(client_id, _) if _ours(config, client_id):
            return _on_gone(config, state, client_id, None)
        case OrderWasRejected(client_id, reason, _, unsent) if _ours(config, client_id):
            return _on_gone(config, state, client_id, reason, unsent)
        case CloseAtMarket(deal, at) if deal == DEAL_NO and state.phase is Phase.RUNNING:
            return _stop(config, state, StopAction.STOP_BOT_AND_SELL, CloseReason.MANUAL, at)
        case CancelDeal(deal, at) if deal == DEAL_NO and state.phase is Phase.RUNNING:
            return _stop(config, state, StopAction.STOP_BOT, CloseReason.CANCELED, at)
    return state, []


def interest(config: Config, state: State) -> Interest:
    """Exactly the prices at which a candle can change the state: the stops and the
    trailing triggers that are armed (fills arrive as their own events)."""
    if state.phase is not Phase.RUNNING:
        return Interest.ALWAYS if state.phase is Phase.NEW else _NOTHING
    if any(slot.resume for slot in state.slots.values()):
        return Interest.ALWAYS  # the next price places the cancelled orders again
    below = lower_stop(config, state) if config.lower_stop_loss_enabled else None
    above = config.upper_stop_loss_price if config.upper_stop_loss_enabled else None
    if config.trailing_down_enabled and _can_trail_down(config, state):
        line = level_price(config, state.lo)
        below = line if below is None or line > below else below
    if config.trailing_up_enabled and _can_trail_up(config, state):
        line = level_price(config, state.hi + 1)
        above = line if above is None or line < above else above
    if below is None and above is None:
        return _NOTHING
    return Interest(below=below, above=above)


_NOTHING = Interest()


# --- prices -----------------------------------------------------------------------


def _on_price(cfg: Config, state: State, low: Decimal, high: Decimal, close: Decimal, at: datetime) -> Result:
    if state.phase is Phase.NEW:
        return _start(cfg, state, low, high, close, at)
    if state.phase is not Phase.RUNNING:
        return state, []
    stop = _stop_hit(cfg, state, low, high)
    if stop is not None:
        return _stop(cfg, state, *stop, at)
    commands: list[Command] = []
    state = _resume(cfg, state, commands)
    if cfg.trailing_up_enabled:
        while _can_trail_up(cfg, state) and close >= level_price(cfg, state.hi + 1):
            state = _trail_up(cfg, state, commands)
    if cfg.trailing_down_enabled and _can_trail_down(cfg, state) and close < level_price(cfg, state.lo):
        state = _trail_down(cfg, state, commands)
    return state, commands


def lower_stop(cfg: Config, state: State) -> Decimal | None:
    """The lower stop price now. As on 3Commas it trails up with the grid: after the
    grid moved up ``k`` lines it sits as far below the new bottom line as it sat below
    the original one (the same distance in price for an arithmetic grid, the same
    ratio for a geometric one). It never moves down with trailing down."""
    price = cfg.lower_stop_loss_price
    if price is None or state.lo <= 0:
        return price
    bottom, moved = level_price(cfg, 0), level_price(cfg, state.lo)
    if cfg.grid_type == "geometric":
        return cfg.rules.price(price * moved / bottom)
    return price + moved - bottom


def _stop_hit(cfg: Config, state: State, low: Decimal, high: Decimal) -> tuple[StopAction, CloseReason] | None:
    stop_price = lower_stop(cfg, state) if cfg.lower_stop_loss_enabled else None
    if stop_price is not None and low <= stop_price:
        return cfg.lower_stop_loss_action, CloseReason.STOP_LOSS
    if cfg.upper_stop_loss_enabled and cfg.upper_stop_loss_price is not None and high >= cfg.upper_stop_loss_price:
        return cfg.upper_stop_loss_action, CloseReason.TAKE_PROFIT
    return None


def _start(cfg: Config, state: State, low: Decimal, high: Decimal, price: Decimal, at: datetime) -> Result:
    deal = Deal(bot=cfg.bot_id, no=DEAL_NO, pair=cfg.pair, direction=Direction.LONG, opened_at=at)
    state = replace(state, phase=Phase.RUNNING, deal=deal)
    stop = _stop_hit(cfg, state, low, high)
    if stop is not None:
        return _stop(cfg, state, *stop, at)
    slots: dict[int, Slot] = {}
    commands: list[Command] = []
    funded: list[int] = []
    for i in range(state.lo, state.hi):
        if level_price(cfg, i) > price:
            funded.append(i)
            slots[i] = Slot(index=i)
        else:
            slots[i] = _buying(cfg, Slot(index=i))
            commands.append(_place(cfg, slots[i]))
    opening = None
    if funded:
        amount = sum((level_amount(cfg, i) for i in funded), ZERO)
        opening = MarketOrder(amount=amount, slots=tuple(funded))
        commands.insert(0, _market(cfg, INIT_STEP, Side.BUY, amount))
    return replace(state, slots=slots, opening=opening), commands


def _resume(cfg: Config, state: State, commands: list[Command]) -> State:
    """Place again the orders cancelled outside the bot (a kill switch, a stop, by hand),
    under the next cycle number: a buy at its line, or the sell of what the interval
    holds. On a price, so only once the bot runs (a stopped bot may place nothing);
    before, such intervals stayed idle, and a grid started again after a kill switch
    never traded again."""
    if not any(slot.resume for slot in state.slots.values()):
        return state
    slots = dict(state.slots)
    dust = state.dust
    for slot in state.slots.values():
        if not slot.resume:
            continue
        slot = replace(slot, resume=False, cycle=slot.cycle + 1)
        if slot.held > 0:
            slots[slot.index], dust = _selling(cfg, slot, dust, commands, state.phase)
        elif state.lo <= slot.index < state.hi:
            slots[slot.index] = _buying(cfg, slot)
            commands.append(_place(cfg, slots[slot.index]))
        else:
            slots[slot.index] = slot
    return replace(state, slots=slots, dust=dust)


# --- trailing ---------------------------------------------------------------------


def _can_trail_up(cfg: Config, state: State) -> bool:
    if not cfg.trailing_up_enabled or state.opening is not None or state.hi in state.slots:
        return False
    lowest = state.slots.get(state.lo)
    return lowest is not None and lowest.side is Side.BUY and lowest.filled == 0 and not lowest.canceling


def _trail_up(cfg: Config, state: State, commands: list[Command]) -> State:
    lowest = state.slots[state.lo]
    new = _buying(cfg, Slot(index=state.hi, cycle=state.retired.get(state.hi, 0) + 1))
    slots = dict(state.slots)
    slots[lowest.index] = replace(lowest, canceling=True)
    slots[new.index] = new
    commands += [CancelOrder(order_id(cfg.bot_id, lowest)), _place(cfg, new)]
    return replace(state, slots=slots, lo=state.lo + 1, hi=state.hi + 1)


def _can_trail_down(cfg: Config, state: State) -> bool:
    if not cfg.trailing_down_enabled or state.opening is not None:
        return False
    lowest = state.slots.get(state.lo)
    return (
        lowest is not None
        and lowest.side is Side.SELL
        and state.lo - 1 not in state.slots
        and state.lo - 1 >= -trailing_down_levels(cfg)
        # never more intervals than the funds were sized for (after trailing up the
        # grid may extend below its moved bottom, down to the same stop price)
        and state.hi - state.lo < max_slots(cfg)
    )


def _trail_down(cfg: Config, state: State, commands: list[Command]) -> State:
    index = state.lo - 1
    new = _buying(cfg, Slot(index=index, cycle=state.retired.get(index, 0) + 1))
    commands.append(_place(cfg, new))
    return replace(state, slots={**state.slots, index: new}, lo=index)


# --- fills ------------------------------------------------------------------------


def _on_fill(cfg: Config, state: State, fill: Fill, remaining: Decimal) -> Result:
    commands: list[Command] = []
    if state.deal is not None:
        state = replace(state, deal=apply_fill(state.deal, fill))
    step_name = fill.client_id.step
    if step_name == INIT_STEP and state.opening is not None:
        state = _opening_filled(cfg, state, fill, remaining, commands)
    elif state.closing is not None and step_name == state.closing.close_step:
        state = _closing_filled(cfg, state, fill, remaining, commands)
    else:
        parsed = parse_step(step_name)
        slot = state.slots.get(parsed[0]) if parsed else None
        if parsed is None or slot is None or slot.cycle != parsed[2] or slot.side is not parsed[1]:
            commands.append(
                RaiseAlert(
                    AlertLevel.WARNING, "grid.unknown_fill", f"fill for {fill.client_id} matches no open grid order"
                )
            )
        elif slot.side is Side.BUY:
            state = _buy_filled(cfg, state, slot, fill, remaining, commands)
        else:
            state = _sell_filled(cfg, state, slot, fill, remaining, commands)
    if state.deal is not None:
        commands.append(DealChanged(state.deal))
    return _maybe_close(cfg, state, commands)


def _opening_filled(cfg: Config, state: State, fill: Fill, remaining: Decimal, out: list[Command]) -> State:
    assert state.opening is not None
    got = effect(fill)
    opening = replace(
        state.opening,
        filled=state.opening.filled + fill.amount,
        base=state.opening.base + got.base,
        quote=state.opening.quote - got.quote,
    )
    if remaining > 0:
        return replace(state, opening=opening)
    # Share what the market buy brought among the intervals it funded, in proportion to
    # each one's level amount, then let each sell at its upper line.
    # The last interval takes the remainder, so the shares add up to exactly what came in.
    slots = dict(state.slots)
    total = sum((level_amount(cfg, i) for i in opening.slots), ZERO)
    dust = state.dust
    base_left, quote_left = opening.base, opening.quote
    for n, i in enumerate(opening.slots):
        last = n == len(opening.slots) - 1
        held = base_left if last else opening.base * level_amount(cfg, i) / total
        cost = quote_left if last else opening.quote * level_amount(cfg, i) / total
        base_left, quote_left = base_left - held, quote_left - cost
        slots[i], dust = _selling(cfg, replace(slots[i], held=held, cost=cost), dust, out, state.phase)
    return replace(state, slots=slots, opening=None, dust=dust)


def _buy_filled(cfg: Config, state: State, slot: Slot, fill: Fill, remaining: Decimal, out: list[Command]) -> State:
    got = effect(fill)
    slot = replace(slot, filled=slot.filled + fill.amount, held=slot.held + got.base, cost=slot.cost - got.quote)
    dust = state.dust
    if remaining <= 0:
        slot, dust = _selling(cfg, slot, dust, out, state.phase)
    return replace(state, slots={**state.slots, slot.index: slot}, dust=dust)


def _selling(cfg: Config, slot: Slot, dust: Decimal, out: list[Command], phase: Phase) -> tuple[Slot, Decimal]:
    """The interval owns its coins: offer them one line up, with the sub-step part of the
    grid's dust (left by earlier rounding) once the two add up to another step. Kept
    apart, one step lost to rounding on every cycle can outweigh a small order's grid
    profit, and the dust piles up below the minimum notional, where it can never be
    sold. Whole steps of dust (a part-filled opening buy's coins) stay aside, as before."""
    spare = dust - cfg.rules.amount(dust)
    amount = cfg.rules.amount(slot.held + spare)
    idle = replace(slot, side=None, amount=ZERO, filled=ZERO, canceling=False, lost=0)
    if phase is not Phase.RUNNING:
        return idle, dust
    if not _valid(cfg, amount, level_price(cfg, slot.index + 1)):
        out.append(
            RaiseAlert(
                AlertLevel.WARNING,
                "grid.unsellable",
                f"interval {slot.index} holds {slot.held}, too little to sell under the market's rules",
            )
        )
        return idle, dust
    left = dust + slot.held - amount  # the whole steps set aside, and what rounding left now
    slot = replace(slot, side=Side.SELL, amount=amount, filled=ZERO, proceeds=ZERO, held=amount, canceling=False,
                   lost=0)
    out.append(_place(cfg, slot))
    return slot, left


def _sell_filled(cfg: Config, state: State, slot: Slot, fill: Fill, remaining: Decimal, out: list[Command]) -> State:
    got = effect(fill)
    slot = replace(
        slot, filled=slot.filled + fill.amount, held=slot.held + got.base, proceeds=slot.proceeds + got.quote
    )
    if remaining > 0:
        return replace(state, slots={**state.slots, slot.index: slot})
    profit = state.profit + slot.proceeds - slot.cost
    slots = dict(state.slots)
    retired = state.retired
    dust = state.dust + max(slot.held, ZERO)
    if state.phase is Phase.RUNNING and state.lo <= slot.index < state.hi:
        slots[slot.index] = _buying(cfg, Slot(index=slot.index, cycle=slot.cycle + 1))
        out.append(_place(cfg, slots[slot.index]))
    else:
        del slots[slot.index]
        retired = {**retired, slot.index: slot.cycle}
    return replace(state, slots=slots, retired=retired, profit=profit, cycles=state.cycles + 1, dust=dust)


def _on_gone(cfg: Config, state: State, client_id: ClientOrderId, reason: str | None, unsent: bool = False) -> Result:
    """An order was cancelled (by us or not), refused, or never sent (``unsent``): it no
    longer exists. An interval's order never sent is placed again (see the docstring)."""
    closing = state.closing
    if (closing is not None and client_id.step == closing.close_step and unsent and reason is not None
            and closing.filled == 0 and closing.lost + 1 < CLOSE_ATTEMPTS):
        # What the grid holds is still to be sold: a fresh id, the same amount, at market.
        closing = replace(closing, lost=closing.lost + 1)
        place = _market(cfg, closing.close_step, Side.SELL, closing.amount)
        alert = RaiseAlert(AlertLevel.INFO, "grid.order_resent",
                           f"{client_id}: {reason}; placed again as {place.order.client_id}")
        return replace(state, closing=closing), [alert, place]
    parsed = parse_step(client_id.step)
    slot = state.slots.get(parsed[0]) if parsed else None
    if parsed is None or slot is None or slot.cycle != parsed[2] or slot.side is not parsed[1]:
        slot = None
    if slot is not None and unsent and reason is not None and _may_resend(state, slot):
        again = replace(slot, cycle=slot.cycle + 1, lost=slot.lost + 1)
        place = _place(cfg, again)
        alert = RaiseAlert(AlertLevel.INFO, "grid.order_resent",
                           f"{client_id}: {reason}; placed again as {place.order.client_id}")
        return replace(state, slots={**state.slots, slot.index: again}), [alert, place]
    commands: list[Command] = []
    if reason is not None:
        if slot is not None and unsent and slot.lost + 1 >= LEVEL_SEND_ATTEMPTS:
            reason += f" ({LEVEL_SEND_ATTEMPTS} sends of this order never reached the exchange)"
        elif closing is not None and client_id.step == closing.close_step:
            lost = f"{CLOSE_ATTEMPTS} sends never reached the exchange; " if unsent else ""
            reason += f" ({lost}the grid still holds {closing.amount} {cfg.pair.base}: sell it by hand)"
        commands.append(RaiseAlert(AlertLevel.WARNING, "grid.order_rejected", f"{client_id}: {reason}"))
    if client_id.step == INIT_STEP and state.opening is not None:
        # The funding buy is gone: what it filled stays as dust, its intervals stay idle.
        state = replace(state, opening=None, dust=state.dust + state.opening.base)
        return _maybe_close(cfg, state, commands)
    if slot is None:
        return state, commands
    outside = not slot.canceling and reason is None
    if outside:
        commands.append(
            RaiseAlert(
                AlertLevel.WARNING,
                "grid.order_canceled",
                f"{client_id} was canceled outside the bot; placed again on the next price while the grid runs",
            )
        )
    slots = dict(state.slots)
    retired = state.retired
    dust = state.dust
    in_range = state.lo <= slot.index < state.hi
    resume = outside and state.phase is Phase.RUNNING  # the sell of a part-filled buy too: the bot may be stopped
    if slot.held > 0 and slot.side is Side.BUY and state.phase is Phase.RUNNING and not resume:
        slots[slot.index], dust = _selling(cfg, slot, dust, commands, state.phase)
    elif slot.held > 0 or (in_range and state.phase is not Phase.STOPPED):
        slots[slot.index] = replace(slot, side=None, amount=ZERO, filled=ZERO, canceling=False, lost=0, resume=resume)
    else:
        del slots[slot.index]
        retired = {**retired, slot.index: slot.cycle}
    return _maybe_close(cfg, replace(state, slots=slots, retired=retired, dust=dust), commands)


def _may_resend(state: State, slot: Slot) -> bool:
    """Whether an interval's lost order is still wanted: the grid runs, nobody asked to
    cancel it, nothing of it traded, and it has not been lost too often already."""
    return (state.phase is Phase.RUNNING and slot.side is not None and not slot.canceling
            and slot.filled == 0 and slot.lost + 1 < LEVEL_SEND_ATTEMPTS)


# --- stopping ---------------------------------------------------------------------


def _stop(cfg: Config, state: State, action: StopAction, reason: CloseReason, at: datetime) -> Result:
    commands: list[Command] = []
    slots = dict(state.slots)
    for slot in state.slots.values():
        if slot.side is not None and not slot.canceling:
            commands.append(CancelOrder(order_id(cfg.bot_id, slot)))
            slots[slot.index] = replace(slot, canceling=True)
    deal = state.deal.close(at, reason) if state.deal is not None else None
    state = replace(state, slots=slots, stop_reason=reason.value, deal=deal)
    if action is StopAction.STOP_BOT:
        state = replace(state, phase=Phase.STOPPED)
        if deal is not None:
            commands.append(DealChanged(deal))
        commands.append(StopBot(f"grid {reason.value}"))
        return state, commands
    return _maybe_close(cfg, replace(state, phase=Phase.CLOSING), commands)


def _maybe_close(cfg: Config, state: State, commands: list[Command]) -> Result:
    """While closing: once no order of the grid is open, sell what it holds at market."""
    if state.phase is not Phase.CLOSING or state.closing is not None or state.opening is not None:
        return state, commands
    if any(slot.side is not None for slot in state.slots.values()):
        return state, commands
    held = sum((s.held for s in state.slots.values()), ZERO) + state.dust
    amount = cfg.rules.amount(held)
    if amount <= 0 or not _valid(cfg, amount, None):
        if amount > 0:  # more than rounding dust: the user must know it was not sold
            commands.append(RaiseAlert(AlertLevel.WARNING, "grid.unsellable",
                                       f"the grid stops holding {held} {cfg.pair.base}, too little to sell under "
                                       "the market's rules: left unsold"))
        return _stopped(state, commands)
    slots = {i: replace(s, held=ZERO) for i, s in state.slots.items()}
    state = replace(state, slots=slots, dust=held - amount, closing=MarketOrder(amount=amount))
    commands.append(_market(cfg, CLOSE_STEP, Side.SELL, amount))
    return state, commands


def _closing_filled(cfg: Config, state: State, fill: Fill, remaining: Decimal, out: list[Command]) -> State:
    assert state.closing is not None
    got = effect(fill)
    closing = replace(state.closing, filled=state.closing.filled + fill.amount, quote=state.closing.quote + got.quote)
    state = replace(state, closing=closing)
    if remaining > 0:
        return state
    state, _ = _stopped(state, out)
    return state


def _stopped(state: State, commands: list[Command]) -> Result:
    state = replace(state, phase=Phase.STOPPED)
    if state.deal is not None:
        commands.append(DealChanged(state.deal))
    commands.append(StopBot(f"grid {state.stop_reason or 'stopped'}"))
    return state, commands


# --- orders -----------------------------------------------------------------------


def _buying(cfg: Config, slot: Slot) -> Slot:
    return replace(
        slot,
        side=Side.BUY,
        amount=level_amount(cfg, slot.index),
        filled=ZERO,
        held=ZERO,
        cost=ZERO,
        proceeds=ZERO,
        canceling=False,
        lost=0,
    )


def _place(cfg: Config, slot: Slot) -> PlaceOrder:
    return PlaceOrder(
        Order(
            client_id=order_id(cfg.bot_id, slot),
            pair=cfg.pair,
            side=slot.side or Side.BUY,
            type=OrderType.LIMIT,
            amount=slot.amount,
            price=level_price(cfg, slot.line),
        )
    )


def _market(cfg: Config, step_name: str, side: Side, amount: Decimal) -> PlaceOrder:
    return PlaceOrder(
        Order(
            client_id=ClientOrderId(cfg.bot_id, DEAL_NO, step_name),
            pair=cfg.pair,
            side=side,
            type=OrderType.MARKET,
            amount=amount,
        )
    )


def _valid(cfg: Config, amount: Decimal, price: Decimal | None) -> bool:
    try:
        cfg.rules.check(amount, price if price is not None else cfg.lower_price)
    except OrderRejected:
        return False
    return True


def _ours(cfg: Config, client_id: ClientOrderId) -> bool:
    return client_id.bot == cfg.bot_id and client_id.deal == DEAL_NO
