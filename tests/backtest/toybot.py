"""A small long-only DCA bot written for the backtester's tests, independent of the
real bots: base order at market on a candle close, ``safety_orders`` limit buys
every ``step_pct`` % below the first fill, one take-profit limit sell ``tp_pct`` %
above the average entry (replaced after each safety fill). Fees are charged in base
on buys (Binance), so the take profit sells what was really received, floored."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sealbot.bots.base import Interest
from sealbot.domain import (
    CancelOrder,
    CandleClosed,
    ClientOrderId,
    CloseReason,
    Command,
    Deal,
    DealChanged,
    Direction,
    Event,
    MarketRules,
    Order,
    OrderFilled,
    OrderType,
    Pair,
    PlaceOrder,
    Side,
)
from sealbot.domain.evolve import evolve
from sealbot.domain.money import ZERO


@dataclass(frozen=True)
class ToyConfig:
    pair: Pair
    base_amount: Decimal  # base units bought by the base order
    safety_amount: Decimal  # base units per safety order
    safety_orders: int
    step_pct: Decimal
    tp_pct: Decimal
    rules: MarketRules
    bot_id: str = "toy"
    max_deals: int = 10**9


@dataclass(frozen=True)
class ToyState:
    deal: Deal | None = None
    deals_done: int = 0
    first_price: Decimal | None = None
    held: Decimal = ZERO  # base received, net of fees
    safety_filled: int = 0
    tp_price: Decimal | None = None
    tp_version: int = 0
    waiting_base: bool = False


def initial_state(config: ToyConfig) -> ToyState:
    return ToyState()


def _cid(config: ToyConfig, state: ToyState, step: str) -> ClientOrderId:
    return ClientOrderId(config.bot_id, state.deals_done + 1, step)


def interest(config: ToyConfig, state: ToyState) -> Interest:
    if state.deal is None and not state.waiting_base:
        return Interest.ALWAYS if state.deals_done < config.max_deals else Interest()
    return Interest()  # resting orders wake the simulator by themselves


def step(config: ToyConfig, state: ToyState, event: Event) -> tuple[ToyState, list[Command]]:
    rules = config.rules
    if isinstance(event, CandleClosed):
        if state.deal is not None or state.waiting_base or state.deals_done >= config.max_deals:
            return state, []
        deal = Deal(config.bot_id, state.deals_done + 1, config.pair, Direction.LONG, event.at)
        order = Order(_cid(config, state, "base"), config.pair, Side.BUY, OrderType.MARKET, config.base_amount)
        return evolve(state, deal=deal, waiting_base=True), [PlaceOrder(order), DealChanged(deal)]
    if isinstance(event, OrderFilled) and state.deal is not None:
        fill = event.fill
        deal = state.deal
        fee_quote = fill.fee * fill.price if fill.fee_currency == config.pair.base else fill.fee
        if fill.side is Side.BUY:
            got = fill.amount - (fill.fee if fill.fee_currency == config.pair.base else ZERO)
            deal = evolve(deal, bought=deal.bought + got, spent=deal.spent + fill.notional,
                          fees_quote=deal.fees_quote + fee_quote)
            commands: list[Command] = []
            new = evolve(state, deal=deal, held=state.held + got, waiting_base=False)
            if fill.client_id.step == "base":
                new = evolve(new, first_price=fill.price)
                for k in range(1, config.safety_orders + 1):
                    price = rules.price(fill.price * (1 - config.step_pct * k / 100), Side.BUY)
                    commands.append(PlaceOrder(Order(_cid(config, state, f"so{k}"), config.pair, Side.BUY,
                                                     OrderType.LIMIT, config.safety_amount, price)))
            else:
                new = evolve(new, safety_filled=state.safety_filled + 1)
                commands.append(CancelOrder(_cid(config, state, f"tp{state.tp_version}")))
            average = deal.spent / deal.bought
            tp = rules.price(average * (1 + config.tp_pct / 100), Side.SELL)
            version = new.tp_version + 1
            commands.append(PlaceOrder(Order(_cid(config, state, f"tp{version}"), config.pair, Side.SELL,
                                             OrderType.LIMIT, rules.amount(new.held), tp)))
            commands.append(DealChanged(deal))
            return evolve(new, tp_price=tp, tp_version=version), commands
        deal = evolve(deal, sold=deal.sold + fill.amount, received=deal.received + fill.notional,
                      fees_quote=deal.fees_quote + fee_quote).close(fill.at, CloseReason.TAKE_PROFIT)
        commands = [CancelOrder(_cid(config, state, f"so{k}"))
                    for k in range(state.safety_filled + 1, config.safety_orders + 1)]
        commands.append(DealChanged(deal))
        return ToyState(deals_done=state.deals_done + 1), commands
    return state, []
