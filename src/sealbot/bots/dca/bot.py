"""The DCA bot as a pure state machine.

A deal opens with a base order (market, or limit at the current price) when the start
condition allows; once it fills, ``active_safety_orders_count`` safety orders wait on
the book at the configured deviations and are topped up as they fill; every completed
entry re-prices the take-profit ladder; the shared executor watches the stop loss and
trailing take profit and runs the close. Manual operations and signals are events.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from msgspec.structs import replace

from sealbot.bots.base import Interest
from sealbot.bots.common import executor as ex
from sealbot.bots.common.executor import Market, Phase, Position, Role
from sealbot.bots.common.exits import edited
from sealbot.bots.common.markets import base_for_quote, limit_price, tradable
from sealbot.bots.common.paths import candle_path, merge
from sealbot.bots.dca.config import DcaConfig, StartCondition, StopLossType
from sealbot.bots.dca.exits import exit_settings
from sealbot.bots.dca.state import DcaDeal, DcaState
from sealbot.domain.commands import AlertLevel, Command, DealChanged, RaiseAlert, StopBot
from sealbot.domain.deals import CloseReason
from sealbot.domain.events import (
    AddFunds,
    AmountType,
    CancelDeal,
    CandleClosed,
    CloseAtMarket,
    EditExits,
    Event,
    IndicatorUpdated,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    PriceTicked,
    SignalAction,
    SignalReceived,
    TimerFired,
)
from sealbot.domain.market import Direction, Pair
from sealbot.domain.money import HUNDRED
from sealbot.domain.orders import ClientOrderId

Result = tuple[DcaState, list[Command]]
DealOp = Callable[[Market, DcaDeal], tuple[DcaDeal, list[Command]]]


def initial_state(config: DcaConfig) -> DcaState:
    return DcaState()


def _market(cfg: DcaConfig, pair: Pair) -> Market:
    return cfg.executor_markets[pair]


def step(config: DcaConfig, state: DcaState, event: Event) -> Result:
    now: datetime | None = getattr(event, "at", None)
    if state.cooldown_until is not None and now is not None and now >= state.cooldown_until:
        # Forget a finished cooldown, so ``interest`` stops naming a time already past
        # (a driver treats a reached ``until`` as consumed).
        state = replace(state, cooldown_until=None)
    match event:
        case CandleClosed(candle=candle):
            return _on_prices(config, state, candle.pair, candle_path(candle), event.at)
        case PriceTicked(pair=pair, price=price, at=at):
            return _on_prices(config, state, pair, (price,), at)
        case TimerFired(at=at):
            return _each_deal(config, state, at, None, lambda m, d: _pos_op(d, ex.on_time(m, d.pos, at)))
        case OrderFilled():
            fill_at = event.at
            return _on_order(
                config, state, event.client_id, fill_at, lambda m, d: _pos_op(d, ex.on_fill(m, d.pos, event, fill_at))
            )
        case OrderCanceled(client_id=cid, at=at):
            return _on_order(config, state, cid, at, lambda m, d: _on_cancel(m, d, cid.step, at))
        case OrderRejected(client_id=cid, reason=reason, at=at, unsent=unsent):
            state, commands = _on_order(
                config, state, cid, at,
                lambda m, d: _pos_op(d, ex.on_canceled(m, d.pos, cid.step, at, rejected=reason, unsent=unsent)),
            )
            if cid.bot == config.bot_id and cid.step == "bo" and not state.stopped:
                # Retrying a refused base order on every candle would hammer the exchange
                # (and its rate limits) for a cause that rarely fixes itself: stop instead.
                state = replace(state, stopped=True)
                commands.append(StopBot(reason=f"base order of deal {cid.deal} was rejected"))
            return state, commands
        case SignalReceived():
            return _on_signal(config, state, event)
        case IndicatorUpdated():
            return _on_indicator(config, state, event), []
        case AddFunds(deal=no, amount=amount, amount_type=kind, at=at, price=price):
            return _on_deal(config, state, no, at, lambda m, d: _add_funds(m, d, amount, kind, price, price))
        case EditExits(deal=no, at=at, take_profit_pct=tp, stop_loss_pct=sl):
            return _on_deal(
                config, state, no, at, lambda m, d: _pos_op(d, ex.edit(m, d.pos, edited(d.pos.exits, tp, sl), at))
            )
        case CloseAtMarket(deal=no, at=at):
            return _on_deal(
                config, state, no, at, lambda m, d: _pos_op(d, ex.close(m, d.pos, CloseReason.MANUAL, None, at))
            )
        case CancelDeal(deal=no, at=at):
            return _on_deal(config, state, no, at, lambda m, d: _pos_op(d, ex.cancel_deal(d.pos, at)))
    return state, []


def _pos_op(deal: DcaDeal, result: tuple[Position, list[Command]]) -> tuple[DcaDeal, list[Command]]:
    pos, commands = result
    return replace(deal, pos=pos), commands


# --- routing -------------------------------------------------------------------------


def _on_prices(cfg: DcaConfig, state: DcaState, pair: Pair, prices: tuple[Decimal, ...], at: datetime) -> Result:
    if pair not in cfg.rules:
        return state, []

    def watch(market: Market, deal: DcaDeal) -> tuple[DcaDeal, list[Command]]:
        deal, commands = _replace_lost_safety(cfg, market, deal)
        pos, more = ex.on_time(market, deal.pos, at)
        commands += more
        if pos.deal.pair == pair:
            for price in prices:
                if pos.phase is not Phase.ACTIVE:
                    break
                pos, more = ex.on_price(market, pos, price, at)
                commands += more
        return (deal if pos is deal.pos else replace(deal, pos=pos)), commands

    state, commands = _each_deal(cfg, state, at, None, watch)
    state, more = _maybe_open(cfg, state, pair, prices[-1], at)
    return state, commands + more


def _on_order(cfg: DcaConfig, state: DcaState, cid: ClientOrderId, at: datetime, op: DealOp) -> Result:
    if cid.bot != cfg.bot_id:
        return state, []
    return _on_deal(cfg, state, cid.deal, at, op)


def _on_deal(cfg: DcaConfig, state: DcaState, no: int, at: datetime, op: DealOp) -> Result:
    return _each_deal(cfg, state, at, no, op)


def _each_deal(cfg: DcaConfig, state: DcaState, at: datetime, only: int | None, op: DealOp) -> Result:
    """Apply ``op`` to each deal (or deal ``only``), then the DCA rules that follow."""
    commands: list[Command] = []
    deals: list[DcaDeal] = []
    for deal in state.deals:
        if only is not None and deal.pos.no != only:
            deals.append(deal)
            continue
        market = _market(cfg, deal.pos.deal.pair)
        before = deal.pos
        deal, more = op(market, deal)
        commands += more
        if cfg.stop_loss_type is StopLossType.STOP_LOSS_AND_DISABLE_BOT:
            # No new deal from the moment the stop fires, but the bot itself stops only
            # once the deal is done: a stopped bot may place no order, so a StopBot sent
            # with the stop's cancels refused the market exit that follows them.
            if _stop_loss_started(before, deal.pos):
                state = replace(state, stopped=True)
            if _stop_loss_done(before, deal.pos):
                commands.append(StopBot(reason=f"deal {deal.pos.no} hit its stop loss"))
        deal, more = _top_up_safety(cfg, market, deal)
        commands += more
        deals.append(deal)
    if all(new is old for new, old in zip(deals, state.deals, strict=True)):
        return _retire(cfg, state, at), commands
    return _retire(cfg, replace(state, deals=tuple(deals)), at), commands


def _stop_loss_started(before: Position, after: Position) -> bool:
    return after.close_reason is CloseReason.STOP_LOSS and before.close_reason is not CloseReason.STOP_LOSS


def _stop_loss_done(before: Position, after: Position) -> bool:
    return after.close_reason is CloseReason.STOP_LOSS and after.done and not before.done


def _retire(cfg: DcaConfig, state: DcaState, at: datetime) -> DcaState:
    """Drop finished deals; a closed deal starts the cooldown."""
    done = [d for d in state.deals if d.pos.done]
    if not done:
        return state
    cooldown = at + timedelta(seconds=cfg.cooldown) if cfg.cooldown else state.cooldown_until
    return replace(
        state,
        deals=tuple(d for d in state.deals if not d.pos.done),
        closed_deals=state.closed_deals + len(done),
        cooldown_until=cooldown,
    )


# --- opening a deal ---------------------------------------------------------------------


def _may_start(cfg: DcaConfig, state: DcaState, pair: Pair) -> bool:
    if state.stopped or len(state.deals) >= cfg.max_active_deals:
        return False
    if cfg.multi_pair and any(d.pos.deal.pair == pair for d in state.deals):
        return False
    if pair in state.start_requests:
        return True
    if cfg.start_condition is StartCondition.IMMEDIATELY:
        return True
    return cfg.start_condition is StartCondition.RSI and pair in state.rsi_ok


def _maybe_open(cfg: DcaConfig, state: DcaState, pair: Pair, price: Decimal, at: datetime) -> Result:
    if not _may_start(cfg, state, pair):
        return state, []
    if state.cooldown_until is not None and at < state.cooldown_until:
        return state, []
    if (cfg.min_price is not None and price < cfg.min_price) or (cfg.max_price is not None and price > cfg.max_price):
        return state, []
    market = _market(cfg, pair)
    side = cfg.strategy.entry_side
    order_price = limit_price(market.rules, price, side)
    amount = base_for_quote(market.rules, cfg.base_order_volume, order_price)
    if not tradable(market.rules, amount, order_price):
        reason = "base order is below the exchange minimum after rounding"
        return replace(state, stopped=True), [
            RaiseAlert(AlertLevel.WARNING, "base_order_too_small", reason),
            StopBot(reason),
        ]
    no = state.next_deal
    pos = ex.open_position(cfg.bot_id, no, pair, cfg.strategy, exit_settings(cfg), at)
    limit = order_price if cfg.base_order_type.value == "limit" else None
    pos, command = ex.place(market, pos, "bo", Role.ENTRY, side, amount, limit)
    state = replace(
        state,
        deals=(*state.deals, DcaDeal(pos=pos)),
        next_deal=no + 1,
        start_requests=tuple(p for p in state.start_requests if p != pair),
    )
    return state, [DealChanged(pos.deal), command]


# --- safety orders ----------------------------------------------------------------------


def _on_cancel(market: Market, deal: DcaDeal, step: str, at: datetime) -> tuple[DcaDeal, list[Command]]:
    """A cancel confirmed. A safety order cancelled outside the bot (a kill switch, a stop,
    by hand) with nothing filled keeps its place: the next safety order is not sent in
    its stead (a stopped bot's orders are refused, so a kill used to burn through every
    safety order of the deal), and it is placed again on the next price."""
    live = deal.pos.order(step)
    outside = (live is not None and live.role is Role.ENTRY and step.startswith("so")
               and step not in deal.pos.canceling and deal.pos.phase is Phase.ACTIVE)
    deal, commands = _pos_op(deal, ex.on_canceled(market, deal.pos, step, at))
    if outside and live is not None and deal.pos.phase is Phase.ACTIVE:
        if live.filled == 0:
            deal = replace(deal, so_lost=(*deal.so_lost, int(step[2:].split(".")[0])))
        else:  # what it bought stays in the deal; the next safety order waits for a price too
            deal = replace(deal, so_held=deal.so_held + 1)
    return deal, commands


def _replace_lost_safety(cfg: DcaConfig, market: Market, deal: DcaDeal) -> tuple[DcaDeal, list[Command]]:
    """Place again, under fresh ids, the safety orders cancelled outside the bot."""
    if deal.so_held:
        deal = replace(deal, so_held=0)  # the top-up that follows the price may place the next
    if not deal.so_lost or deal.pos.phase is not Phase.ACTIVE or deal.base_price is None:
        return deal, []
    commands: list[Command] = []
    pos, rev = deal.pos, deal.so_rev
    for n in deal.so_lost:
        rev += 1
        price, amount = _safety_order(cfg, market, deal.base_price, n)
        pos, command = ex.place(market, pos, f"so{n}.{rev}", Role.ENTRY, cfg.strategy.entry_side, amount, price)
        commands.append(command)
    return replace(deal, pos=pos, so_lost=(), so_rev=rev), commands


def _safety_order(cfg: DcaConfig, market: Market, base_price: Decimal, n: int) -> tuple[Decimal, Decimal]:
    """(rounded price, rounded amount) of safety order ``n`` (1-based)."""
    deviation, volume = cfg.safety_steps[n - 1]
    sign = 1 if cfg.strategy is Direction.LONG else -1
    price = limit_price(market.rules, base_price * (HUNDRED - sign * deviation) / HUNDRED, cfg.strategy.entry_side)
    return price, base_for_quote(market.rules, volume, price)


def _top_up_safety(cfg: DcaConfig, market: Market, deal: DcaDeal) -> tuple[DcaDeal, list[Command]]:
    """Keep ``active_safety_orders_count`` safety orders working while the deal is active."""
    pos = deal.pos
    if pos.phase is not Phase.ACTIVE:
        return deal, []
    if deal.base_price is None:
        if pos.order("bo") is not None or pos.deal.average_entry is None:
            return deal, []
        deal = replace(deal, base_price=pos.deal.average_entry)
    base_price = deal.base_price
    assert base_price is not None
    steps = cfg.safety_steps
    live = sum(1 for o in pos.orders if o.step.startswith("so")) + len(deal.so_lost) + deal.so_held
    commands: list[Command] = []
    while live < cfg.active_safety_orders_count and deal.so_placed < len(steps):
        n = deal.so_placed + 1
        deal = replace(deal, so_placed=n)
        side = cfg.strategy.entry_side
        price, amount = _safety_order(cfg, market, base_price, n)
        if not tradable(market.rules, amount, price):
            commands.append(RaiseAlert(AlertLevel.WARNING, "safety_order_too_small", f"deal {pos.no} so{n} skipped"))
            continue
        pos, command = ex.place(market, deal.pos, f"so{n}", Role.ENTRY, side, amount, price)
        deal = replace(deal, pos=pos)
        commands.append(command)
        live += 1
    return deal, commands


def _add_funds(
    market: Market,
    deal: DcaDeal,
    amount: Decimal,
    kind: AmountType,
    limit: Decimal | None,
    reference: Decimal | None,
) -> tuple[DcaDeal, list[Command]]:
    """A manual safety order: limit at ``limit``, or at market when it is None."""
    pos = deal.pos
    if pos.phase is not Phase.ACTIVE:
        return deal, [RaiseAlert(AlertLevel.INFO, "add_funds_refused", f"deal {pos.no} is not active")]
    side = pos.direction.entry_side
    ref = reference or pos.deal.average_entry
    if kind is AmountType.PERCENT_OF_BALANCE or ref is None:
        return deal, [RaiseAlert(AlertLevel.INFO, "add_funds_refused", "amount must be in quote or base")]
    price = limit_price(market.rules, limit, side) if limit is not None else None
    base = (
        market.rules.amount(amount) if kind is AmountType.BASE else base_for_quote(market.rules, amount, price or ref)
    )
    if not tradable(market.rules, base, price or ref):
        return deal, [RaiseAlert(AlertLevel.INFO, "add_funds_refused", "below the exchange minimum")]
    n = deal.adds + 1
    pos, command = ex.place(market, pos, f"add{n}", Role.ENTRY, side, base, price)
    return replace(deal, pos=pos, adds=n), [command]


# --- signals and indicators -------------------------------------------------------------


def _on_signal(cfg: DcaConfig, state: DcaState, signal: SignalReceived) -> Result:
    pair = signal.pair
    if pair is not None and pair not in cfg.rules:
        return state, []
    at = signal.at
    match signal.action:
        case SignalAction.START_DEAL:
            target = pair or cfg.markets[0].rules.pair
            busy = cfg.multi_pair and any(d.pos.deal.pair == target for d in state.deals)
            if state.stopped or len(state.deals) >= cfg.max_active_deals or busy:
                # As on 3Commas, a start signal that cannot start a deal now is dropped,
                # not queued for later.
                reason = f"start signal {signal.signal_id} ignored: no free deal slot for {target}"
                return state, [RaiseAlert(AlertLevel.INFO, "start_signal_ignored", reason)]
            if target not in state.start_requests:
                state = replace(state, start_requests=(*state.start_requests, target))
            if signal.trigger_price is not None:
                return _maybe_open(cfg, state, target, signal.trigger_price, at)
            return state, []
        case SignalAction.CLOSE_AT_MARKET:
            ref = signal.trigger_price
            return _each_deal(
                cfg,
                state,
                at,
                None,
                lambda m, d: (
                    _pos_op(d, ex.close(m, d.pos, CloseReason.SIGNAL, ref, at))
                    if pair is None or d.pos.deal.pair == pair
                    else (d, [])
                ),
            )
        case SignalAction.ADD_FUNDS_IN_QUOTE | SignalAction.ADD_FUNDS_IN_BASE:
            active = [d for d in state.deals if pair is None or d.pos.deal.pair == pair]
            if not active or signal.amount is None:
                return state, []
            kind = AmountType.QUOTE if signal.action is SignalAction.ADD_FUNDS_IN_QUOTE else AmountType.BASE
            amount, ref = signal.amount, signal.trigger_price
            return _on_deal(cfg, state, active[-1].pos.no, at, lambda m, d: _add_funds(m, d, amount, kind, None, ref))
    return state, []


def _on_indicator(cfg: DcaConfig, state: DcaState, event: IndicatorUpdated) -> DcaState:
    rsi = cfg.rsi
    if rsi is None or event.name.lower() != "rsi" or event.pair not in cfg.rules:
        return state
    if event.timeframe != rsi.timeframe or event.period != rsi.period:
        return state
    met = event.value < rsi.value if cfg.strategy is Direction.LONG else event.value > rsi.value
    others = tuple(p for p in state.rsi_ok if p != event.pair)
    return replace(state, rsi_ok=(*others, event.pair) if met else others)


# --- interest ---------------------------------------------------------------------------


def interest(config: DcaConfig, state: DcaState) -> Interest:
    """Exact wake-up levels for a single-pair bot; a multi-pair bot mixes pairs' prices in
    one feed, so it asks for every candle."""
    if config.multi_pair:
        return Interest.ALWAYS
    parts = [Interest.ALWAYS if d.so_lost or d.so_held else ex.interest(d.pos) for d in state.deals]
    pair = config.markets[0].rules.pair
    if _may_start(config, state, pair):
        if state.cooldown_until is not None:
            parts.append(Interest(until=state.cooldown_until))
        else:
            parts.append(Interest.ALWAYS)
    return merge(parts)
