"""The smart trade as a pure state machine: wait for the entry the user chose, then hand
the position to the shared executor (take-profit ladder, trailing, stop loss), and
close at market on timeout or on request."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from msgspec.structs import replace

from sealbot.bots.base import Interest
from sealbot.bots.common import executor as ex
from sealbot.bots.common.executor import Market, Phase, Role
from sealbot.bots.common.exits import ExitSettings, Target, edited, shifted
from sealbot.bots.common.markets import base_for_quote, limit_price, tradable
from sealbot.bots.common.paths import candle_path, merge
from sealbot.bots.smart.config import EntryType, SmartTradeConfig, Trigger
from sealbot.bots.smart.state import SmartState, Stage
from sealbot.domain.commands import AlertLevel, Command, DealChanged, RaiseAlert
from sealbot.domain.deals import CloseReason, Deal, DealStatus
from sealbot.domain.events import (
    CancelDeal,
    CandleClosed,
    CloseAtMarket,
    EditExits,
    Event,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    PriceTicked,
    TimerFired,
)
from sealbot.domain.market import Direction

Result = tuple[SmartState, list[Command]]


def initial_state(config: SmartTradeConfig) -> SmartState:
    return SmartState()


def exit_settings(cfg: SmartTradeConfig) -> ExitSettings:
    return ExitSettings(
        targets=tuple(
            Target(share=t.amount_percentage, profit_pct=t.profit_percentage, price=t.price)
            for t in cfg.take_profit_steps
        ),
        trailing_deviation=cfg.trailing_deviation if cfg.trailing_enabled else None,
        stop_loss_pct=cfg.stop_loss_percentage or None,
        stop_loss_price=cfg.stop_loss_price,
        stop_loss_timeout=cfg.stop_loss_timeout_in_seconds,
        trailing_stop=cfg.tsl_enabled,
        breakeven=cfg.sl_to_breakeven_enabled,
    )


def _market(cfg: SmartTradeConfig) -> Market:
    return Market(bot_id=cfg.bot_id, rules=cfg.market.rules, fee_rate=cfg.fees.worst)


def _event_time(event: Event) -> datetime | None:
    if isinstance(event, CandleClosed):
        return event.at
    return getattr(event, "at", None)


def step(config: SmartTradeConfig, state: SmartState, event: Event) -> Result:
    at = _event_time(event)
    if at is None or state.stage is Stage.DONE:
        return state, []
    if state.stage is Stage.NEW:
        state = replace(state, stage=Stage.WAITING)
        if config.entry_type is EntryType.LIMIT or (config.entry_type is EntryType.MARKET and config.amount):
            return _enter(config, state, config.entry_price, at)
    if state.stage is Stage.WAITING:
        return _waiting(config, state, event, at)
    return _in_trade(config, state, event, at)


# --- waiting for the entry --------------------------------------------------------------


def _prices(cfg: SmartTradeConfig, event: Event) -> tuple[Decimal, ...]:
    if isinstance(event, CandleClosed) and event.candle.pair == cfg.market.rules.pair:
        return candle_path(event.candle)
    if isinstance(event, PriceTicked) and event.pair == cfg.market.rules.pair:
        return (event.price,)
    return ()


def _waiting(cfg: SmartTradeConfig, state: SmartState, event: Event, at: datetime) -> Result:
    if isinstance(event, CloseAtMarket | CancelDeal):
        return replace(state, stage=Stage.DONE), [RaiseAlert(AlertLevel.INFO, "smart_trade_canceled", "before entry")]
    long = cfg.direction is Direction.LONG
    for price in _prices(cfg, event):
        if cfg.entry_type is EntryType.MARKET:
            return _enter(cfg, state, price, at, market_order=True)
        if cfg.entry_type is EntryType.CONDITIONAL:
            assert cfg.entry_price is not None
            above = cfg.entry_trigger is Trigger.AT_OR_ABOVE
            if (above and price >= cfg.entry_price) or (not above and price <= cfg.entry_price):
                return _enter(cfg, state, price, at, market_order=True)
        elif cfg.entry_type is EntryType.TRAILING:
            assert cfg.entry_price is not None
            extreme = state.extreme
            if extreme is None:
                if (price <= cfg.entry_price) if long else (price >= cfg.entry_price):
                    state = replace(state, extreme=price)
            elif (price < extreme) if long else (price > extreme):
                state = replace(state, extreme=price)
            elif (
                price >= shifted(Direction.LONG, extreme, cfg.entry_trailing_deviation)
                if long
                else price <= shifted(Direction.SHORT, extreme, cfg.entry_trailing_deviation)
            ):
                return _enter(cfg, state, price, at, market_order=True)
    return state, []


def _enter(
    cfg: SmartTradeConfig, state: SmartState, price: Decimal | None, at: datetime, market_order: bool = False
) -> Result:
    """Place the entry order (step ``bo``): limit at ``entry_price``, else at market."""
    market = _market(cfg)
    side = cfg.direction.entry_side
    order_price = limit_price(market.rules, price, side) if price is not None else None
    if cfg.amount is not None:
        amount = market.rules.amount(cfg.amount)
    elif cfg.volume is not None and order_price is not None:
        amount = base_for_quote(market.rules, cfg.volume, order_price)
    else:
        return state, []
    if order_price is not None and not tradable(market.rules, amount, order_price):
        message = "entry order is below the exchange minimum after rounding"
        return replace(state, stage=Stage.DONE), [RaiseAlert(AlertLevel.WARNING, "entry_too_small", message)]
    pos = ex.open_position(cfg.bot_id, cfg.deal_no, market.rules.pair, cfg.direction, exit_settings(cfg), at)
    limit = None if market_order or cfg.entry_type is EntryType.MARKET else order_price
    pos, command = ex.place(market, pos, "bo", Role.ENTRY, side, amount, limit)
    return replace(state, stage=Stage.IN_TRADE, pos=pos), [DealChanged(pos.deal), command]


# --- in the trade -----------------------------------------------------------------------


def _in_trade(cfg: SmartTradeConfig, state: SmartState, event: Event, at: datetime) -> Result:
    pos = state.pos
    if pos is None:
        return state, []
    market = _market(cfg)
    commands: list[Command] = []
    match event:
        case OrderFilled() if _ours(cfg, event.client_id.bot, event.client_id.deal):
            pos, commands = ex.on_fill(market, pos, event, at)
        case OrderCanceled(client_id=cid) if _ours(cfg, cid.bot, cid.deal):
            pos, commands = ex.on_canceled(market, pos, cid.step, at)
        case OrderRejected(client_id=cid, reason=reason, unsent=unsent) if _ours(cfg, cid.bot, cid.deal):
            pos, commands = ex.on_canceled(market, pos, cid.step, at, rejected=reason, unsent=unsent)
        case EditExits(deal=no, take_profit_pct=tp, stop_loss_pct=sl) if no == cfg.deal_no:
            pos, commands = ex.edit(market, pos, edited(pos.exits, tp, sl), at)
        case CloseAtMarket(deal=no) if no == cfg.deal_no:
            pos, commands = ex.close(market, pos, CloseReason.MANUAL, None, at)
        case CancelDeal(deal=no) if no == cfg.deal_no:
            pos, commands = ex.cancel_deal(pos, at)
        case CandleClosed() | PriceTicked() | TimerFired():
            pos, commands = ex.on_time(market, pos, at)
            for price in _prices(cfg, event):
                if pos.phase is not Phase.ACTIVE:
                    break
                pos, more = ex.on_price(market, pos, price, at)
                commands += more
    entered_at = state.entered_at
    if entered_at is None and pos.phase is Phase.ACTIVE:
        entered_at = at
    deadline = _deadline(cfg, entered_at)
    if deadline is not None and at >= deadline and pos.phase is Phase.ACTIVE:
        pos, more = ex.close(market, pos, CloseReason.TIMEOUT, None, at)
        commands += more
    stage = Stage.DONE if pos.done else Stage.IN_TRADE
    return replace(state, pos=pos, entered_at=entered_at, stage=stage), commands


def _ours(cfg: SmartTradeConfig, bot: str, deal: int) -> bool:
    return bot == cfg.bot_id and deal == cfg.deal_no


def _deadline(cfg: SmartTradeConfig, entered_at: datetime | None) -> datetime | None:
    if not cfg.timeout_seconds or entered_at is None:
        return None
    return entered_at + timedelta(seconds=cfg.timeout_seconds)


# --- interest ---------------------------------------------------------------------------


def interest(config: SmartTradeConfig, state: SmartState) -> Interest:
    if state.stage is Stage.NEW:
        return Interest.ALWAYS
    if state.stage is Stage.DONE:
        return Interest()
    if state.stage is Stage.WAITING:
        return _entry_interest(config, state)
    pos = state.pos
    if pos is None:
        return Interest()
    parts = [ex.interest(pos)]
    deadline = _deadline(config, state.entered_at)
    if deadline is not None and pos.phase is Phase.ACTIVE:
        parts.append(Interest(until=deadline))
    return merge(parts)


def _entry_interest(cfg: SmartTradeConfig, state: SmartState) -> Interest:
    price = cfg.entry_price
    if cfg.entry_type is EntryType.CONDITIONAL and price is not None:
        return Interest(above=price) if cfg.entry_trigger is Trigger.AT_OR_ABOVE else Interest(below=price)
    if cfg.entry_type is EntryType.TRAILING and price is not None:
        long = cfg.direction is Direction.LONG
        extreme = state.extreme
        if extreme is None:
            return Interest(below=price) if long else Interest(above=price)
        if long:
            return Interest(below=extreme, above=shifted(Direction.LONG, extreme, cfg.entry_trailing_deviation))
        return Interest(above=extreme, below=shifted(Direction.SHORT, extreme, cfg.entry_trailing_deviation))
    return Interest.ALWAYS


def deal_of(state: SmartState) -> Deal | None:
    """The trade's deal bookkeeping (None before the entry order is placed)."""
    return state.pos.deal if state.pos else None


def is_finished(state: SmartState) -> bool:
    return state.stage is Stage.DONE or (state.pos is not None and state.pos.deal.status is not DealStatus.OPEN)
