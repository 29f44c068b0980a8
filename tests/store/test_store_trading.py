"""Orders journal, fills, deals, signals and bots: idempotency and locking."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from sealbot.domain import (
    ClientOrderId,
    CloseReason,
    Deal,
    DealStatus,
    Direction,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Pair,
    Side,
    TimeInForce,
)
from sealbot.domain.evolve import evolve
from sealbot.store import Conflict, UnitOfWork

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
BTC = Pair("BTC", "USDT")


def _setup(uow: Callable[[], UnitOfWork]) -> tuple[int, int, int]:
    with uow() as u:
        owner = u.users.add("trader@example.com", "h").id
        account = u.accounts.add(owner, "binance", "main").id
        bot = u.bots.add(owner, "dca", "dca", {"pair": "BTC/USDT"}, account_id=account).id
    return owner, account, bot


def _order(bot: int, step: str = "base", **kw: object) -> Order:
    fields: dict[str, object] = {"price": Decimal("43210.12"), "time_in_force": TimeInForce.GTC}
    fields.update(kw)
    return Order(ClientOrderId(str(bot), 7, step), BTC, Side.BUY, OrderType.LIMIT, Decimal("0.00123"),
                 **fields)  # type: ignore[arg-type]


def test_journalled_order_round_trips_as_the_domain_type(uow: Callable[[], UnitOfWork]) -> None:
    owner, account, bot = _setup(uow)
    order = _order(bot, stop_price=Decimal("43000.5"))
    with uow() as u:
        assert u.orders.journal(owner, account, order, bot_id=bot) is True
    with uow() as u:
        assert u.orders.get(owner, order.client_id) == order
        row = u.orders.row(owner, order.client_id.text)
        assert (row.deal_no, row.bot_id, row.account_id) == (7, bot, account)


def test_client_order_id_is_unique(uow: Callable[[], UnitOfWork], engine: sa.Engine) -> None:
    owner, account, bot = _setup(uow)
    with uow() as u:
        assert u.orders.journal(owner, account, _order(bot), bot_id=bot) is True
        # journalling the same step again (a retry after a crash) is a no-op, not a second order
        assert u.orders.journal(owner, account, _order(bot, price=Decimal(1)), bot_id=bot) is False
        assert u.orders.get(owner, _order(bot).client_id).price == Decimal("43210.12")
    with uow() as u:
        intruder = u.users.add("x@example.com", "h").id
        their_account = u.accounts.add(intruder, "binance", "x").id
    with pytest.raises(Conflict), uow() as u:
        u.orders.journal(intruder, their_account, _order(bot))
    # and the database itself enforces it, whatever the code path
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO orders (owner_id, account_id, client_order_id, pair, side, type, amount, time_in_force,"
            " status, filled, created_at, updated_at) VALUES (:o, :a, :c, 'BTC/USDT', 'buy', 'market', '1', 'GTC',"
            " 'pending', '0', :t, :t)"), {"o": owner, "a": account, "c": _order(bot).client_id.text, "t": T0})
    with uow() as u:
        assert len(u.orders.list(owner)) == 1


def test_order_status_updates_and_open_orders(uow: Callable[[], UnitOfWork]) -> None:
    owner, account, bot = _setup(uow)
    with uow() as u:
        for step in ("base", "so1", "so2"):
            u.orders.journal(owner, account, _order(bot, step), bot_id=bot)
        u.orders.update_status(owner, f"sb{bot}-7-base", OrderStatus.FILLED, filled=Decimal("0.00123"),
                               average_price=Decimal("43210.12"), exchange_order_id="123")
        u.orders.update_status(owner, f"sb{bot}-7-so1", OrderStatus.OPEN, exchange_order_id="124")
    with uow() as u:
        assert [o.client_id.step for o in u.orders.open_orders(owner, account_id=account)] == ["so1", "so2"]
        filled = u.orders.get(owner, f"sb{bot}-7-base")
        assert (filled.status, filled.filled, filled.exchange_id) == (OrderStatus.FILLED, Decimal("0.00123"), "123")
        assert u.orders.find(owner, f"sb{bot}-7-nope") is None


def test_fill_insert_is_idempotent(uow: Callable[[], UnitOfWork]) -> None:
    owner, account, bot = _setup(uow)
    order = _order(bot)
    fill = Fill(order.client_id, BTC, Side.BUY, Decimal("43210.12"), Decimal("0.0006"), Decimal("0.0000006"),
                "BTC", T0, "t-1", is_maker=True)
    with uow() as u:
        u.orders.journal(owner, account, order, bot_id=bot)
        assert u.fills.add(owner, fill) is True
        assert u.fills.add(owner, fill) is False  # the websocket and reconcile both report it
        assert u.fills.add(owner, evolve(fill, trade_id="t-2", at=T0 + timedelta(1))) is True
    with uow() as u:  # a later transaction (after a restart) reporting it again
        assert u.fills.add(owner, fill) is False
        fills = u.fills.for_order(owner, order.client_id)
    assert [f.trade_id for f in fills] == ["t-1", "t-2"]
    assert fills[0] == fill


def test_deals_save_and_update_by_bot_and_number(uow: Callable[[], UnitOfWork]) -> None:
    owner, _, bot = _setup(uow)
    deal = Deal(str(bot), 1, BTC, Direction.LONG, T0, bought=Decimal("0.003"), spent=Decimal("129.63036"),
                fees_quote=Decimal("0.12963036"))
    with uow() as u:
        assert u.deals.next_no(owner, bot) == 1
        assert u.deals.save(owner, bot, deal) == deal
    closed = evolve(deal, sold=Decimal("0.003"), received=Decimal("131.0")).close(T0 + timedelta(hours=2),
                                                                                   CloseReason.TAKE_PROFIT)
    with uow() as u:
        u.deals.save(owner, bot, closed)
        assert u.deals.next_no(owner, bot) == 2
    with uow() as u:
        assert u.deals.get(owner, bot, 1) == closed
        assert u.deals.list(owner, bot, status=DealStatus.OPEN) == []
        assert u.deals.get(owner, bot, 1).realized_profit == Decimal("131.0") - Decimal("129.63036") - Decimal(
            "0.12963036")


def test_signals_are_recorded_once(uow: Callable[[], UnitOfWork]) -> None:
    owner, _, bot = _setup(uow)
    with uow() as u:
        assert u.signals.add_if_new(owner, bot, "tv-123") is True
        assert u.signals.add_if_new(owner, bot, "tv-123") is False
        assert u.signals.add_if_new(owner, bot, "tv-124", status="rejected", reason="too old") is True
    with uow() as u:
        assert u.signals.add_if_new(owner, bot, "tv-123") is False
        assert [s.signal_id for s in u.signals.list(owner, bot)] == ["tv-124", "tv-123"]
        assert u.signals.get(owner, bot, "tv-124").reason == "too old"


def test_bot_updates_use_optimistic_locking(uow: Callable[[], UnitOfWork]) -> None:
    owner, _, bot = _setup(uow)
    with uow() as u:
        seen = u.bots.get(owner, bot).version
    with uow() as u:  # someone else saves first
        u.bots.save_state(owner, bot, {"deal": 1}, expected_version=seen)
    with pytest.raises(Conflict), uow() as u:
        u.bots.save_state(owner, bot, {"deal": 2}, expected_version=seen)
    with uow() as u:
        row = u.bots.get(owner, bot)
        assert (row.state, row.version) == ({"deal": 1}, seen + 1)


def test_concurrent_session_writing_a_stale_bot_is_refused(uow: Callable[[], UnitOfWork]) -> None:
    owner, _, bot = _setup(uow)
    first, second = uow(), uow()
    with first:
        seen = first.bots.get(owner, bot).version
        with second:
            second.bots.update(owner, bot, expected_version=seen, name="second")
        with pytest.raises(Conflict):
            first.bots.update(owner, bot, expected_version=seen, name="first")
        first.rollback()
    with uow() as u:
        assert u.bots.get(owner, bot).name == "second"


def test_alert_deliveries_and_acknowledgement(uow: Callable[[], UnitOfWork]) -> None:
    owner, account, bot = _setup(uow)
    with uow() as u:
        alert = u.alerts.add(owner, "critical", "key_leak_suspected", "foreign order", account_id=account, bot_id=bot)
        u.alerts.record_delivery(owner, alert.id, "email", {"ok": True})
        u.alerts.record_delivery(owner, alert.id, "telegram", {"ok": False, "error": "timeout"})
    with uow() as u:
        assert [a.id for a in u.alerts.list(owner, unacknowledged=True)] == [alert.id]
        assert set(u.alerts.get(owner, alert.id).deliveries or {}) == {"email", "telegram"}
        u.alerts.acknowledge(owner, alert.id)
    with uow() as u:
        assert u.alerts.list(owner, unacknowledged=True) == []
