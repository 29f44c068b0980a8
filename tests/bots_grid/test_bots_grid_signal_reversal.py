"""Signal bot reversals (``reverse_on_opposite_entry``): an entry against an open
position closes it at market, then opens the new position once the close has filled;
the pair's latest signal decides while the close is working; a close that does not
complete never lets the opposite position open. Ends with a property over random
signals, fills, partial fills, refusals and lost orders."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from sealbot.bots import signal as sb
from sealbot.bots.common.executor import CLOSE_ATTEMPTS
from sealbot.bots.signals import parse_signal
from sealbot.domain import (
    AlertLevel,
    AmountType,
    BalanceReported,
    CancelDeal,
    ClientOrderId,
    CloseAtMarket,
    DealChanged,
    DealStatus,
    Direction,
    Event,
    Fill,
    Order,
    OrderFilled,
    OrderWasRejected,
    Pair,
    PlaceOrder,
    RaiseAlert,
    Side,
    SignalAction,
)
from sealbot.domain.evolve import evolve
from sealbot.domain.money import floor_to_step

from .grid_exchange import T0
from .test_bots_grid_signal_bot import BTC, ETH, Harness, config, orders, sig

ENTER_LONG, ENTER_SHORT = SignalAction.ENTER_LONG, SignalAction.ENTER_SHORT
EXIT_LONG, EXIT_SHORT = SignalAction.EXIT_LONG, SignalAction.EXIT_SHORT


def reversing(**overrides: Any) -> Harness:
    """A harness whose bot reverses, with a margin float of coins for shorts."""
    h = Harness(config(**{"short_enabled": True, "reverse_on_opposite_entry": True, **overrides}))
    for ex in h.ex.values():
        ex.base = D("1")
    return h


def codes(commands: list[Any]) -> list[str]:
    return [c.code for c in commands if isinstance(c, RaiseAlert)]


def alert(commands: list[Any], code: str) -> RaiseAlert:
    return next(c for c in commands if isinstance(c, RaiseAlert) and c.code == code)


def deals(commands: list[Any]) -> list[tuple[int, str, str | None]]:
    return [(c.deal.no, c.deal.status.value, c.deal.close_reason.value if c.deal.close_reason else None)
            for c in commands if isinstance(c, DealChanged)]


def held_fill(h: Harness, step: str) -> OrderFilled:
    """Take the held-back fill of the order with ``step`` out of the harness's queue."""
    event = next(e for e in h.pending if isinstance(e, OrderFilled) and e.fill.client_id.step == step)
    h.pending.remove(event)
    return event


def part(event: OrderFilled, amount: str, remaining: str, trade: str) -> OrderFilled:
    fill = event.fill
    share = D(amount) / fill.amount
    return OrderFilled(evolve(fill, amount=D(amount), fee=fill.fee * share, trade_id=trade), D(remaining))


# --- the reversal itself ------------------------------------------------------------


def test_an_opposite_entry_closes_the_long_then_opens_the_short_it_asked_for() -> None:
    h = reversing()
    h.send(sig(1, ENTER_LONG))  # 100 USDT at 40000 = 0.0025 BTC
    out = h.send(sig(2, ENTER_SHORT, price="41000"), price="41000")
    # the long's normal exit first, then the short sized from the signal: 100 / 41000 -> 0.0024
    assert orders(out) == [("sbs1-1-x1", "sell", "0.0025"), ("sbs1-2-e", "sell", "0.0024")]
    assert deals(out)[:2] == [(1, "closed", "signal"), (2, "open", None)]  # then the short's fill
    assert codes(out) == []
    (short,) = h.state.positions
    assert short.deal.direction is Direction.SHORT and short.held == D("0.0024")
    closed = next(c.deal for c in out if isinstance(c, DealChanged) and c.deal.no == 1)
    assert short.deal.opened_at == closed.closed_at and short.entry_after_close is None  # opened at the close
    # and back: the short is bought back (what it owes, no more), then the long opens as deal 3
    out = h.send(sig(3, ENTER_LONG, price="40000", amount="0.003", kind=AmountType.BASE))
    assert orders(out) == [("sbs1-2-x1", "buy", "0.0024"), ("sbs1-3-e", "buy", "0.0030")]
    assert h.ex[BTC].base == D("1") - D("0.0024") + D("0.0024") + D("0.0030")
    assert [p.deal.no for p in h.state.positions] == [3] and h.state.next_deal == 4


def test_without_the_option_or_in_the_same_direction_an_entry_is_refused_as_before() -> None:
    h = Harness(config(short_enabled=True))
    h.ex[BTC].base = D("1")
    h.send(sig(1, ENTER_LONG))
    out = h.send(sig(2, ENTER_SHORT))
    assert orders(out) == [] and codes(out) == ["signal.position_open"]
    h = reversing()
    h.send(sig(1, ENTER_LONG))
    out = h.send(sig(2, ENTER_LONG))
    assert orders(out) == [] and codes(out) == ["signal.position_open"]
    (position,) = h.state.positions
    assert position.exit_amount is None and position.entry_after_close is None


def test_a_signal_delivered_twice_reverses_once() -> None:
    h = reversing()
    h.send(sig(1, ENTER_LONG))
    h.send(sig(2, ENTER_SHORT))
    assert h.send(sig(2, ENTER_SHORT)) == []
    assert [str(o.client_id) for o in h.ex[BTC].placed] == ["sbs1-1-e", "sbs1-1-x1", "sbs1-2-e"]


def test_the_new_entry_waits_for_the_whole_exit_to_fill() -> None:
    h = reversing()
    h.send(sig(1, ENTER_LONG))
    h.hold_fills = True
    assert orders(h.send(sig(2, ENTER_SHORT))) == [("sbs1-1-x1", "sell", "0.0025")]
    whole = held_fill(h, "x1")
    out = h.send(part(whole, "0.0010", "0.0015", "p1"))
    assert orders(out) == [] and deals(out) == [(1, "open", None)]
    (position,) = h.state.positions
    assert position.held == D("0.0015") and position.entry_after_close is not None
    out = h.send(part(whole, "0.0015", "0", "p2"))
    assert orders(out) == [("sbs1-2-e", "sell", "0.0025")]
    assert deals(out)[0] == (1, "closed", "signal")


def test_a_reversal_during_the_entry_waits_for_the_entry_then_the_exit() -> None:
    h = reversing()
    h.hold_fills = True
    h.send(sig(1, ENTER_LONG))
    assert orders(h.send(sig(2, ENTER_SHORT))) == []  # the long is still filling: nothing to close yet
    out = h.release()
    assert orders(out) == [("sbs1-1-x1", "sell", "0.0025"), ("sbs1-2-e", "sell", "0.0025")]
    # the entry being reversed is refused with nothing filled: that deal is cancelled, not
    # closed by its exit, so the reversal's entry is dropped too
    h = reversing()
    h.hold_fills = True
    h.send(sig(1, ENTER_LONG))
    h.send(sig(2, ENTER_SHORT))
    h.pending.clear()
    out = h.send(OrderWasRejected(ClientOrderId("s1", 1, "e"), "insufficient balance", T0))
    assert orders(out) == [] and codes(out) == ["signal.order_gone", "signal.reversal_stopped"]
    assert h.state.positions == () and deals(out) == [(1, "canceled", "canceled")]


def test_a_refused_exit_drops_the_entry_and_keeps_the_position() -> None:
    h = reversing()
    h.send(sig(1, ENTER_LONG))
    h.hold_fills = True
    h.send(sig(2, ENTER_SHORT))
    h.pending.clear()
    out = h.send(OrderWasRejected(ClientOrderId("s1", 1, "x1"), "insufficient balance", T0))
    assert orders(out) == [] and codes(out) == ["signal.order_gone", "signal.reversal_stopped"]
    assert "enter_short on BTC/USDT is dropped" in alert(out, "signal.reversal_stopped").message
    (position,) = h.state.positions
    assert position.deal.no == 1 and position.held == D("0.0025") and position.entry_after_close is None
    # the next opposite entry starts a new reversal with the next exit step
    h.hold_fills = False
    out = h.send(sig(3, ENTER_SHORT))
    assert orders(out) == [("sbs1-1-x2", "sell", "0.0025"), ("sbs1-2-e", "sell", "0.0025")]


def test_an_exit_cancelled_after_a_partial_fill_drops_the_entry() -> None:
    h = reversing()
    h.send(sig(1, ENTER_LONG))
    h.hold_fills = True
    h.send(sig(2, ENTER_SHORT))
    h.send(part(held_fill(h, "x1"), "0.0010", "0.0015", "p1"))
    out = h.send(OrderWasRejected(ClientOrderId("s1", 1, "x1"), "canceled", T0))
    assert orders(out) == []
    assert "stays open with 0.0015 BTC" in alert(out, "signal.reversal_stopped").message
    (position,) = h.state.positions
    assert position.held == D("0.0015") and position.deal.direction is Direction.LONG


def test_a_lost_exit_is_sent_again_and_the_reversal_goes_on_until_the_cap() -> None:
    h = reversing()
    h.send(sig(1, ENTER_LONG))
    h.lose = lambda order: str(order.client_id) == "sbs1-1-x1"
    out = h.send(sig(2, ENTER_SHORT))
    assert orders(out) == [("sbs1-1-x1", "sell", "0.0025"), ("sbs1-1-x2", "sell", "0.0025"),
                           ("sbs1-2-e", "sell", "0.0025")]
    h = reversing()
    h.send(sig(1, ENTER_LONG))
    h.lose = lambda order: order.client_id.step.startswith("x")
    out = h.send(sig(2, ENTER_SHORT))
    assert [o[0] for o in orders(out)] == [f"sbs1-1-x{n}" for n in range(1, CLOSE_ATTEMPTS + 1)]
    assert codes(out)[-1] == "signal.reversal_stopped"
    (position,) = h.state.positions
    assert position.deal.no == 1 and position.held == D("0.0025") and h.ex[BTC].base == D("1.0025")


def test_a_disallowed_or_unsizeable_new_entry_stops_the_reversal_at_the_close() -> None:
    h = reversing(short_enabled=False)
    h.send(sig(1, ENTER_LONG))
    out = h.send(sig(2, ENTER_SHORT))
    assert orders(out) == [("sbs1-1-x1", "sell", "0.0025")] and deals(out) == [(1, "closed", "signal")]
    stopped = alert(out, "signal.reversal_stopped")
    assert stopped.level is AlertLevel.WARNING and "short entries are disabled" in stopped.message
    assert "long position on BTC/USDT is closed" in stopped.message
    assert h.state.positions == () and h.state.next_deal == 2
    # too small for the market (1 USDT), and a percentage with no balance reported
    h = reversing()
    h.send(sig(1, ENTER_LONG))
    out = h.send(sig(2, ENTER_SHORT, amount="1", kind=AmountType.QUOTE))
    assert orders(out) == [("sbs1-1-x1", "sell", "0.0025")] and "below the market's minimum" in alert(
        out, "signal.reversal_stopped").message
    h = reversing(amount="10", amount_type="percent_of_balance")
    h.send(BalanceReported("USDT", D("1000"), T0))
    h.send(sig(1, ENTER_LONG))  # 10 % of 1000 at 40000 = 0.0025
    h.send(BalanceReported("USDT", D("4000"), T0))
    out = h.send(sig(2, ENTER_SHORT))  # sized when placed, from the balance then: 400 / 40000
    assert orders(out) == [("sbs1-1-x1", "sell", "0.0025"), ("sbs1-2-e", "sell", "0.0100")]


def test_max_open_positions_counts_the_closed_position_out() -> None:
    h = reversing(max_open_positions=1)
    h.send(sig(1, ENTER_LONG))
    out = h.send(sig(2, ENTER_SHORT))
    assert orders(out)[-1] == ("sbs1-2-e", "sell", "0.0025")
    h = _closing(max_open_positions=1)
    h.hold_fills = False
    out = h.send(sig(3, ENTER_LONG, pair=ETH, price="2000"))
    assert codes(out) == ["signal.max_positions"]  # the BTC long is still open
    out = h.release()
    assert orders(out) == [("sbs1-2-e", "sell", "0.0025")]


# --- the latest signal wins while the close is working ----------------------------


def _closing(**overrides: Any) -> Harness:
    """A long being reversed into a short, its exit not filled yet."""
    h = reversing(**overrides)
    h.send(sig(1, ENTER_LONG))
    h.hold_fills = True
    assert orders(h.send(sig(2, ENTER_SHORT))) == [("sbs1-1-x1", "sell", "0.0025")]
    return h


def test_an_exit_either_way_drops_the_pending_entry_and_lets_the_close_finish() -> None:
    for n, action in ((3, EXIT_LONG), (4, EXIT_SHORT)):
        h = _closing()
        out = h.send(sig(n, action))
        assert orders(out) == [] and codes(out) == ["signal.reversal_cancelled"]
        assert alert(out, "signal.reversal_cancelled").level is AlertLevel.INFO
        out = h.release()
        assert orders(out) == [] and deals(out) == [(1, "closed", "signal")] and h.state.positions == ()


def test_close_all_close_at_market_and_cancel_drop_the_pending_entry() -> None:
    h = _closing()
    out = h.send(sig(3, SignalAction.CLOSE_ALL, pair=None, price=None))
    assert codes(out) == ["signal.reversal_cancelled"] and orders(out) == []
    assert orders(h.release()) == [] and h.state.positions == ()
    h = _closing()
    assert codes(h.send(CloseAtMarket(1, T0))) == ["signal.reversal_cancelled"]
    out = h.release()
    assert orders(out) == [] and deals(out) == [(1, "closed", "signal")]
    h = _closing()
    out = h.send(CancelDeal(1, T0))
    assert codes(out) == ["signal.reversal_stopped"] and h.state.positions == ()
    assert [c.deal.status for c in out if isinstance(c, DealChanged)] == [DealStatus.CANCELED]


def test_a_later_entry_replaces_the_pending_one_whatever_its_direction() -> None:
    h = _closing()
    out = h.send(sig(3, ENTER_SHORT, amount="0.004", kind=AmountType.BASE))
    assert orders(out) == [] and codes(out) == ["signal.reversal_replaced"]
    assert orders(h.release()) == [("sbs1-2-e", "sell", "0.0040")]
    # the strategy flipped back to long before the close filled: the long it asks for
    # opens after the close (the market exit cannot be taken back)
    h = _closing()
    h.send(sig(3, ENTER_LONG, amount="0.001", kind=AmountType.BASE))
    out = h.release()
    assert orders(out) == [("sbs1-2-e", "buy", "0.0010")]
    assert h.state.positions[0].deal.direction is Direction.LONG


def test_an_opposite_entry_during_a_signalled_exit_opens_after_it() -> None:
    h = reversing()
    h.send(sig(1, ENTER_LONG))
    h.hold_fills = True
    assert orders(h.send(sig(2, EXIT_LONG))) == [("sbs1-1-x1", "sell", "0.0025")]
    assert orders(h.send(sig(3, ENTER_SHORT))) == []  # the exit is working: no second one
    assert orders(h.release()) == [("sbs1-2-e", "sell", "0.0025")]


def test_the_documented_strategy_alert_and_bot_reverse_a_long() -> None:
    """docs/bots-signal.md: the TradingView strategy alert, as TradingView fills it in
    on a long -> short flip, is an ``enter_short`` that the documented bot reverses on."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "bots-signal.md").read_text()
    section = doc[doc.index("## Reversals"):doc.index("## Sizing")]
    bot = json.loads(re.findall(r"```json\n(.*?)```", section, re.S)[0])
    body = re.findall(r"```text\n(.*?)```", section, re.S)[0]
    filled = {"…the bot's secret…": "s3cret", "…the bot's id…": "tvstrat-uuid", "{{timenow}}": T0.isoformat(),
              "{{close}}": "40000", "{{ticker}}": "BTCUSDT", "{{strategy.order.action}}": "sell",
              "{{strategy.market_position}}": "short", "{{strategy.prev_market_position}}": "long"}
    for placeholder, value in filled.items():
        body = body.replace(placeholder, value)
    flip = parse_signal(body.encode(), T0 + timedelta(seconds=5), known_pairs=(BTC,)).signal
    assert flip.action is ENTER_SHORT and flip.pair == BTC
    h = Harness(sb.parse_config(bot))
    h.ex[BTC].base = D("1")
    h.send(sig(1, ENTER_LONG))
    assert orders(h.send(flip)) == [("sbtvstrat-1-x1", "sell", "0.00250"), ("sbtvstrat-2-e", "sell", "0.00250")]


# --- state ----------------------------------------------------------------------------


def test_a_pending_reversal_survives_json_and_old_states_load() -> None:
    h = _closing()
    data = json.loads(json.dumps(sb.dump_state(h.state)))
    loaded = sb.load_state(data)
    assert loaded == h.state and loaded.positions[0].entry_after_close == sig(2, ENTER_SHORT)
    del data["positions"][0]["entry_after_close"]  # saved before reversals existed
    assert sb.load_state(data).positions[0].entry_after_close is None
    h.state = loaded
    assert orders(h.release()) == [("sbs1-2-e", "sell", "0.0025")]


# --- property: random signals, fills, partial fills, refusals, lost orders -------------


@dataclass
class Book:
    """What the exchange saw, kept apart from the bot: per deal, the base its fills
    moved (its exposure) and its working orders."""

    cfg: sb.Config
    fee_in_base: bool
    state: sb.State = field(init=False)
    exposure: dict[int, D] = field(default_factory=dict)
    pair_of: dict[int, Pair] = field(default_factory=dict)
    direction_of: dict[int, Direction] = field(default_factory=dict)
    closed: set[int] = field(default_factory=set)  # deals the bot has closed or cancelled
    base_fees: dict[int, D] = field(default_factory=dict)  # fees a deal's buys paid in base
    working: dict[ClientOrderId, tuple[Order, D]] = field(default_factory=dict)  # order, filled so far
    fresh: list[ClientOrderId] = field(default_factory=list)  # placed since the last ``settle``
    ids: set[ClientOrderId] = field(default_factory=set)
    price: dict[Pair, D] = field(default_factory=lambda: {BTC: D("40000"), ETH: D("2000")})
    trades: int = 0

    def __post_init__(self) -> None:
        self.state = sb.initial_state(self.cfg)

    def step(self, event: Event) -> list[Any]:
        self.state, commands = sb.step(self.cfg, self.state, event)
        for command in commands:
            if isinstance(command, DealChanged):
                self.pair_of[command.deal.no] = command.deal.pair
                self.direction_of[command.deal.no] = command.deal.direction
                if command.deal.status is not DealStatus.OPEN:
                    self.closed.add(command.deal.no)
            if isinstance(command, PlaceOrder):
                self.placed(command.order)
        pairs = [p.deal.pair for p in self.state.positions]
        assert len(pairs) == len(set(pairs)), "two positions on one pair"
        for position in self.state.positions:
            # a reversal's entry only ever waits on a close that is working or due
            assert position.entry_after_close is None or position.exit_amount is not None or (
                position.exit_requested)
        return commands

    def placed(self, order: Order) -> None:
        cid = order.client_id
        assert cid not in self.ids, f"duplicate id {cid}"
        self.ids.add(cid)
        rules = self.cfg.rules[order.pair]
        if cid.step == "e":
            for no, pair in self.pair_of.items():
                if pair == order.pair and no != cid.deal:
                    # closed, holding at most what the step left (a long) or what a buy-back's
                    # fee in base left owed (a short: it buys back what it sold, no more)
                    assert no in self.closed, f"deal {no} is still open"
                    left = self.exposure.get(no, D(0))
                    assert left < rules.step_size + self.base_fees.get(no, D(0)), f"deal {no} still holds base"
                    assert not any(w.deal == no for w in self.working), f"deal {no} still has orders working"
        if cid.step.startswith("x"):
            assert order.amount <= self.exposure.get(cid.deal, D(0)), "an exit above the holding"
        self.working[cid] = (order, D(0))
        self.fresh.append(cid)

    def settle(self) -> list[Any]:
        """Fill at once, in full, every order placed since the last call and what follows."""
        out: list[Any] = []
        while self.fresh:
            cid = self.fresh.pop(0)
            if cid in self.working:
                out += self.fill(list(self.working).index(cid), partial=False)
        return out

    def fill(self, index: int, partial: bool) -> list[Any]:
        cid = list(self.working)[index % len(self.working)]
        order, filled = self.working[cid]
        left = order.amount - filled
        rules = self.cfg.rules[order.pair]
        amount = floor_to_step(left / 2, rules.step_size) if partial else left
        if amount <= 0:
            amount = left
        price = self.price[order.pair]
        self.trades += 1
        if order.side is Side.BUY and self.fee_in_base:
            fee, currency, moved = amount * D("0.001"), order.pair.base, amount * D("0.999")
            self.base_fees[cid.deal] = self.base_fees.get(cid.deal, D(0)) + fee
        else:
            fee, currency = amount * price * D("0.001"), order.pair.quote
            moved = amount if order.side is Side.BUY else -amount
        direction = self.direction_of[cid.deal]
        self.exposure[cid.deal] = self.exposure.get(cid.deal, D(0)) + (
            moved if direction is Direction.LONG else -moved)
        assert self.exposure[cid.deal] >= 0, "an exit traded more than the deal held"
        if amount == left:
            del self.working[cid]
        else:
            self.working[cid] = (order, filled + amount)
        fill = Fill(cid, order.pair, order.side, price, amount, fee, currency, T0, f"t{self.trades}")
        return self.step(OrderFilled(fill, left - amount))

    def gone(self, index: int, unsent: bool) -> list[Any]:
        cid = list(self.working)[index % len(self.working)]
        _order, filled = self.working.pop(cid)
        return self.step(OrderWasRejected(cid, "refused", T0, unsent=unsent and filled == 0))


SIGNALS = [*[ENTER_LONG, ENTER_SHORT] * 3, EXIT_LONG, EXIT_SHORT, SignalAction.CLOSE_ALL]
SIGNAL_MOVE = st.tuples(st.just("signal"), st.sampled_from(SIGNALS), st.sampled_from([BTC, BTC, BTC, ETH]),
                        st.integers(500, 80000), st.booleans(), st.sampled_from([False, False, False, True]))
MOVES = st.one_of(
    # a signal, sent twice or not, its orders filled at once or left working
    SIGNAL_MOVE, SIGNAL_MOVE,
    # a working order fills (in part or in full), or is gone (refused, or never sent)
    st.tuples(st.just("fill"), st.integers(0, 3), st.booleans()),
    st.tuples(st.just("gone"), st.integers(0, 3), st.booleans()),
)


@settings(max_examples=300, deadline=None)
@given(moves=st.lists(MOVES, min_size=3, max_size=30), fee_in_base=st.booleans(),
       sides=st.sampled_from([(True, True), (True, True), (True, False), (False, True)]),
       max_open=st.sampled_from([None, 1]))
# the close fills in two parts; the close is refused after a part filled
@example(moves=[("signal", ENTER_LONG, BTC, 40000, False, False), ("signal", ENTER_SHORT, BTC, 40000, False, True),
                ("fill", 0, True), ("fill", 0, True)], fee_in_base=False, sides=(True, True), max_open=None)
@example(moves=[("signal", ENTER_SHORT, BTC, 40000, False, False), ("signal", ENTER_LONG, BTC, 40000, False, True),
                ("fill", 0, True), ("gone", 0, False)], fee_in_base=True, sides=(True, True), max_open=None)
def test_reversals_never_hold_two_positions_on_a_pair_nor_enter_before_the_close(
        moves: list[Any], fee_in_base: bool, sides: tuple[bool, bool], max_open: int | None) -> None:
    cfg = config(reverse_on_opposite_entry=True, long_enabled=sides[0], short_enabled=sides[1], amount="50",
                 max_open_positions=max_open)
    book = Book(cfg, fee_in_base)
    for n, move in enumerate(moves):
        if move[0] == "signal":
            _, action, pair, price, twice, hold = move
            book.price[pair] = D(price)
            signal = sig(n, action, pair=pair, price=str(price))
            commands = book.step(signal)
            if any(isinstance(c, RaiseAlert) and c.code == "signal.reversal_replaced" for c in commands):
                event("an entry replaced a pending one")
            if twice:
                assert book.step(signal) == []  # a duplicate is ignored, reversal or not
            if hold:
                book.fresh.clear()
                continue
            commands = book.settle()
        elif book.working:
            commands = book.fill(move[1], move[2]) if move[0] == "fill" else book.gone(move[1], move[2])
        else:
            continue
        for command in commands:
            if isinstance(command, RaiseAlert) and command.code.startswith("signal.reversal"):
                event(command.code)
            if isinstance(command, PlaceOrder) and command.order.client_id.step == "e":
                event("a reversal placed its entry")  # a fill led to it: only a reversal does that
    # let everything working fill: whatever reversal is left completes or stops cleanly
    while book.working:
        book.fill(0, False)
    for position in book.state.positions:
        assert position.entry_after_close is None
        assert position.held == book.exposure[position.deal.no]
