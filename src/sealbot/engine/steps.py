"""Writing a bot's step down: its commands guarded and journalled with its new state.

Mixed into ``AccountRunner``. Everything here happens inside one journal transaction
and does no I/O: a ``PlaceOrder`` is checked by the guard against the day's totals the
journal holds (``JournalTx.spent_today``, so a restart or another process changes
nothing) and journalled as pending with what it counts against them (or journalled as
refused, with its reason, and the bot paused), a ``CancelOrder`` is
made durable, alerts, statuses and deals are stored. What must happen once the
transaction committed (sending orders, cancels, alerts) is collected in an
``Outcome`` for the runner to carry out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sealbot.domain import (
    AlertLevel,
    CancelDeal,
    CancelOrder,
    CloseAtMarket,
    Command,
    DealChanged,
    DealStatus,
    Event,
    Order,
    OrderStatus,
    OrderType,
    OrderWasRejected,
    PlaceOrder,
    RaiseAlert,
    StopBot,
)
from sealbot.domain.evolve import evolve
from sealbot.engine.clock import Clock
from sealbot.engine.guard import NOTHING_SPENT, GuardPolicy
from sealbot.engine.journal import AccountRecord, AlertRecord, BotRecord, BotStatus, JournalOrder, JournalTx
from sealbot.engine.live import LiveBot
from sealbot.engine.market import MarketData
from sealbot.engine.orders import OrderManager

OPERATOR_EVENTS = (CloseAtMarket, CancelDeal)


@dataclass
class Outcome:
    """What a committed step still asks for, and the bot as it was saved."""

    sends: list[Order] = field(default_factory=list)
    cancels: list[Any] = field(default_factory=list)
    alerts: list[AlertRecord] = field(default_factory=list)
    follow_ups: list[tuple[str, Event]] = field(default_factory=list)
    commands: int = 0
    record: BotRecord | None = None  # the bot as saved in the step's transaction


class StepWriter:
    """Turns one step's commands into journal writes (the runner's transaction)."""

    account: AccountRecord
    guard: GuardPolicy
    market: MarketData
    clock: Clock
    orders: OrderManager

    def _prefetch(self, tx: JournalTx, stepped: list[tuple[LiveBot, Any, list[Command]]]) -> None:
        """Before a candle's steps are written down: what they will read and write."""
        orders: list[str] = []
        deals: list[tuple[str, int]] = []
        for _live, _state, commands in stepped:
            for command in commands:
                if isinstance(command, PlaceOrder):
                    orders.append(command.order.client_id.text)
                elif isinstance(command, DealChanged):
                    deals.append((command.deal.bot, command.deal.no))
        tx.prefetch([live.id for live, _state, _commands in stepped], orders, deals)

    def _step(self, tx: JournalTx, live: LiveBot, event: Event) -> tuple[Any, Outcome]:
        state, commands = live.module.step(live.config, live.state, event)
        return state, self._apply(tx, live, event, state, commands)

    def _apply(self, tx: JournalTx, live: LiveBot, event: Event, state: Any, commands: list[Command]) -> Outcome:
        """Write one step down: its commands (guarded, journalled) and the bot's new state."""
        outcome = Outcome(commands=len(commands))
        stored = tx.get_bot(live.id)
        if stored is not None and (stored.status, stored.status_reason) != (live.record.status,
                                                                          live.record.status_reason):
            # the user started, paused or stopped the bot elsewhere (the web process): the
            # stored status wins, and saving the step must not write the old one back
            live.record = evolve(live.record, status=stored.status, status_reason=stored.status_reason)
        # A bot that is not running sends no new orders, except what its owner asked for
        # (close at market, cancel the deal) and, for a paused one, the market exit that
        # ends a close: with orders resting, the exit follows in a later step, the one
        # that hears their cancels confirmed, not in the operator's own.
        may_send = live.running or isinstance(event, OPERATOR_EVENTS)
        record = live.record
        for command in commands:
            record = self._command(tx, live, record, command, outcome, may_send, event)
            if record.status != BotStatus.RUNNING and not isinstance(event, OPERATOR_EVENTS):
                may_send = False
        outcome.record = evolve(record, state=live.module.dump_state(state))
        tx.save_bot(outcome.record)
        return outcome

    def _command(self, tx: JournalTx, live: LiveBot, record: BotRecord, command: Command, outcome: Outcome,
                 may_send: bool, event: Event) -> BotRecord:
        match command:
            case PlaceOrder(order=order):
                if tx.get_order(order.client_id) is not None:
                    return record  # the same step asked twice: the journal already has it
                closing = self._closing(live, order)
                if not may_send and not (closing and order.type is OrderType.MARKET
                                         and record.status == BotStatus.PAUSED):
                    self._refuse(tx, live, order, f"bot {record.status}: no new orders", outcome)
                    return record
                spent = NOTHING_SPENT  # the day's totals, from the journal, when a daily limit may use them
                if not closing and self.guard.daily_limited(record.user, self.account.id):
                    spent = tx.spent_today(record.user, self.account.id, self.clock.now().date())
                decision = self.guard.check(order, user=record.user, account=self.account.id,
                                            market=self.market.snapshot(order.pair), spent=spent, closing=closing)
                if not decision.allowed:
                    reason = f"guard {decision.rule}: {decision.reason}"
                    self._refuse(tx, live, order, reason, outcome)
                    outcome.alerts.append(tx.add_alert(AlertRecord(
                        record.user, AlertLevel.CRITICAL, "guard.refused", f"bot {live.id}: order "
                        f"{order.client_id} refused by {reason}; bot paused", self.clock.now(),
                        self.account.id, live.id)))
                    return evolve(record, status=BotStatus.PAUSED, status_reason=reason)
                self.orders.journal_new(tx, live.id, order, decision.counted)
                outcome.sends.append(order)
            case CancelOrder(client_id=client_id):
                self.orders.request_cancel(tx, client_id)
                outcome.cancels.append(client_id)
            case RaiseAlert(level=level, code=code, message=message):
                outcome.alerts.append(tx.add_alert(AlertRecord(record.user, level, code, f"bot {live.id}: {message}",
                                                               self.clock.now(), self.account.id, live.id)))
            case StopBot(reason=reason):
                if record.status == BotStatus.PAUSED:
                    return record  # a pause by the guard or the watchdog keeps its reason for the user
                return evolve(record, status=BotStatus.STOPPED, status_reason=reason)
            case DealChanged(deal=deal):
                tx.save_deal(self.account.id, deal)
                live.deals[deal.no] = deal
        return record

    def _closing(self, live: LiveBot, order: Order) -> bool:
        deal = live.deals.get(order.client_id.deal)
        return deal is not None and deal.status is DealStatus.OPEN and order.side is deal.direction.exit_side

    def _refuse(self, tx: JournalTx, live: LiveBot, order: Order, reason: str, outcome: Outcome) -> None:
        tx.add_order(JournalOrder(self.account.id, live.id, evolve(order, status=OrderStatus.REJECTED),
                                  self.clock.now(), reason=reason))
        outcome.follow_ups.append((live.id, OrderWasRejected(order.client_id, reason, self.clock.now())))


__all__ = ["OPERATOR_EVENTS", "Outcome", "StepWriter"]
