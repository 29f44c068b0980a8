"""Another user's row is simply not found: every owner-scoped read and write says NotFound."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from sealbot.domain import ClientOrderId, Deal, Direction, NotFound, Order, OrderStatus, OrderType, Pair, Side
from sealbot.store import UnitOfWork

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass
class World:
    alice: int
    bob: int
    account: int
    bot: int
    alert: int
    order: ClientOrderId


@pytest.fixture
def world(uow: Callable[[], UnitOfWork]) -> World:
    with uow() as u:
        alice = u.users.add("alice@example.com", "h").id
        bob = u.users.add("bob@example.com", "h").id
        account = u.accounts.add(alice, "binance", "main").id
        bot = u.bots.add(alice, "dca", "btc dca", {"pair": "BTC/USDT"}, account_id=account).id
        alert = u.alerts.add(alice, "warning", "foreign_order", "an order sealbot did not place",
                             account_id=account).id
        cid = ClientOrderId(str(bot), 1, "base")
        u.orders.journal(alice, account, Order(cid, Pair("BTC", "USDT"), Side.BUY, OrderType.LIMIT,
                                               Decimal("0.001"), Decimal("50000")), bot_id=bot)
        u.deals.save(alice, bot, Deal(str(bot), 1, Pair("BTC", "USDT"), Direction.LONG, T0))
        u.credentials.add(alice, account, algorithm="hmac-sha256", kek_id="k", wrapped_key=b"w", nonce=b"n",
                          ciphertext=b"c", api_key_hint="WXYZ")
    return World(alice, bob, account, bot, alert, cid)


def test_owner_sees_their_rows(uow: Callable[[], UnitOfWork], world: World) -> None:
    with uow() as u:
        assert u.accounts.get(world.alice, world.account).exchange == "binance"
        assert u.bots.get(world.alice, world.bot).name == "btc dca"
        assert u.orders.get(world.alice, world.order).amount == Decimal("0.001")
        assert u.alerts.get(world.alice, world.alert).code == "foreign_order"
        assert u.credentials.current(world.alice, world.account).api_key_hint == "WXYZ"
        assert u.deals.get(world.alice, world.bot, 1).no == 1


READS: dict[str, Callable[[UnitOfWork, World], object]] = {
    "account.get": lambda u, w: u.accounts.get(w.bob, w.account),
    "bot.get": lambda u, w: u.bots.get(w.bob, w.bot),
    "order.get": lambda u, w: u.orders.get(w.bob, w.order),
    "alert.get": lambda u, w: u.alerts.get(w.bob, w.alert),
    "credential.current": lambda u, w: u.credentials.current(w.bob, w.account),
    "deal.get": lambda u, w: u.deals.get(w.bob, w.bot, 1),
    "fills.for_order": lambda u, w: u.fills.for_order(w.bob, w.order),
    "signals.list": lambda u, w: u.signals.list(w.bob, w.bot),
}

WRITES: dict[str, Callable[[UnitOfWork, World], object]] = {
    "account.set_status": lambda u, w: u.accounts.set_status(w.bob, w.account, "revoked"),
    "account.set_label": lambda u, w: u.accounts.set_label(w.bob, w.account, "mine now"),
    "bot.update": lambda u, w: u.bots.update(w.bob, w.bot, name="hijacked"),
    "bot.set_status": lambda u, w: u.bots.set_status(w.bob, w.bot, "running"),
    "bot.delete": lambda u, w: u.bots.delete(w.bob, w.bot),
    "bot.add on another's account": lambda u, w: u.bots.add(w.bob, "grid", "x", {}, account_id=w.account),
    "order.update_status": lambda u, w: u.orders.update_status(w.bob, w.order, OrderStatus.CANCELED),
    "order.journal on another's account": lambda u, w: u.orders.journal(
        w.bob, w.account, Order(ClientOrderId("x", 1, "a"), Pair("BTC", "USDT"), Side.BUY, OrderType.MARKET,
                                Decimal(1))),
    "alert.acknowledge": lambda u, w: u.alerts.acknowledge(w.bob, w.alert),
    "credential.add": lambda u, w: u.credentials.add(w.bob, w.account, algorithm="hmac-sha256", kek_id="k",
                                                     wrapped_key=b"", nonce=b"", ciphertext=b""),
    "deal.save": lambda u, w: u.deals.save(w.bob, w.bot, Deal(str(w.bot), 2, Pair("BTC", "USDT"),
                                                                Direction.LONG, T0)),
    "signal.add_if_new": lambda u, w: u.signals.add_if_new(w.bob, w.bot, "sig-1"),
}


def test_another_user_cannot_read(uow: Callable[[], UnitOfWork], world: World) -> None:
    for action, read in READS.items():
        with uow() as u, pytest.raises(NotFound):
            read(u, world)
            pytest.fail(f"{action} returned another user's row")


def test_another_user_cannot_write(uow: Callable[[], UnitOfWork], world: World) -> None:
    for action, write in WRITES.items():
        with pytest.raises(NotFound), uow() as u:
            write(u, world)
            pytest.fail(f"{action} changed another user's row")
    with uow() as u:  # and nothing changed
        assert u.accounts.get(world.alice, world.account).status == "active"
        assert u.accounts.get(world.alice, world.account).label == "main"
        bot = u.bots.get(world.alice, world.bot)
        assert (bot.name, bot.status) == ("btc dca", "stopped")
        assert u.orders.get(world.alice, world.order).status is OrderStatus.PENDING
        assert u.alerts.get(world.alice, world.alert).acknowledged_at is None
        assert [c.version for c in u.credentials.list_for_account(world.alice, world.account)] == [1]


def test_destroying_a_users_credentials_leaves_others_alone(uow: Callable[[], UnitOfWork], world: World) -> None:
    with uow() as u:
        bob_account = u.accounts.add(world.bob, "kucoin", "bob").id
        u.credentials.add(world.bob, bob_account, algorithm="hmac-sha256", kek_id="k", wrapped_key=b"w",
                          nonce=b"n", ciphertext=b"bob-blob")
        assert u.credentials.destroy_for_account(world.bob, world.account) == 0
        assert u.credentials.destroy_for_owner(world.bob) == 1
    with uow() as u:
        assert u.credentials.current(world.alice, world.account).ciphertext == b"c"
        with pytest.raises(NotFound):
            u.credentials.current(world.bob, bob_account)
