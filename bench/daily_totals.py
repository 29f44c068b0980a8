"""What the guard's durable daily totals cost per guarded order, on SQLite and PostgreSQL.

    .venv/bin/python bench/daily_totals.py [--orders 400] [--today 0,1000] [--pg postgresql://postgres@127.0.0.1:5432/test]

Before, a guarded order's journal work was one ``add_order`` (the daily total was a
dict in memory). Now the step also reads ``spent_today`` (on PostgreSQL: lock the
user's row, then sum ``orders.guard_notional`` over the user's orders of the UTC day)
and stores the order's notional (``put_order``). Each timed transaction journals one
order, the old way or the new way, alternately, on a fresh database that already holds
``--today`` orders of that user for the day (the sum reads them all). Printed: the
median transaction time of each way and the difference, per backend. ``--pg`` is an
admin URL: a throwaway database is created next to it and dropped afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from sealbot.domain import ClientOrderId, Order, OrderType, Pair, Side
from sealbot.domain.evolve import evolve
from sealbot.engine.journal import JournalOrder
from sealbot.engine.store_journal import StoreJournal
from sealbot.store import UnitOfWork, make_session_factory, upgrade

BTC = Pair("BTC", "USDT")
NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


@contextmanager
def database(backend: str, pg_admin: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    admin_url = pg_admin.replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"sealbot_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def entry(account: str, n: int, at: datetime) -> JournalOrder:
    order = Order(ClientOrderId("1", n, "b"), BTC, Side.BUY, OrderType.LIMIT, Decimal("0.001"), Decimal(100))
    return JournalOrder(account, "", order, at, notional=None)


def run(url: str, orders: int, today: int) -> tuple[float, float]:
    upgrade(url)
    factory = make_session_factory(url)
    with UnitOfWork(factory) as uow:
        user = uow.users.add("bench@example.org", "x").id
        account = str(uow.accounts.add(user, "fake", "bench").id)
    journal = StoreJournal(factory)
    n = 0
    for start in range(0, today, 500):
        with journal.transaction() as tx:
            for _ in range(min(500, today - start)):
                n += 1
                tx.add_order(evolve(entry(account, n, NOW - timedelta(seconds=n)), notional=Decimal("0.1")))
    old: list[float] = []
    new: list[float] = []
    for i in range(orders):
        n += 1
        if i % 2:
            began = time.perf_counter()
            with journal.transaction() as tx:
                tx.add_order(entry(account, n, NOW))
            old.append(time.perf_counter() - began)
        else:
            began = time.perf_counter()
            with journal.transaction() as tx:
                tx.spent_today(str(user), account, NOW.date())
                journalled = entry(account, n, NOW)
                tx.add_order(journalled)
                tx.put_order(evolve(journalled, notional=Decimal("0.1")))
            new.append(time.perf_counter() - began)
    factory.kw["bind"].dispose()
    return statistics.median(old), statistics.median(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=400, help="timed transactions per run (half each way)")
    parser.add_argument("--today", default="0,1000", help="orders the user already has today, per run")
    parser.add_argument("--pg", default="", help="PostgreSQL admin URL (no PostgreSQL run without it)")
    args = parser.parse_args()
    backends = ["sqlite"] + (["postgresql"] if args.pg else [])
    print(f"{'backend':<11} {'today':>6} {'before ms':>10} {'now ms':>8} {'extra ms':>9}")
    for backend in backends:
        for today in (int(t) for t in args.today.split(",")):
            with database(backend, args.pg) as url:
                old, new = run(url, args.orders, today)
            print(f"{backend:<11} {today:>6} {old * 1e3:>10.3f} {new * 1e3:>8.3f} {(new - old) * 1e3:>9.3f}")


if __name__ == "__main__":
    main()
