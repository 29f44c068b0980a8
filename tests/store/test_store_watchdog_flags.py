"""What the watchdog flagged: looked up among the ids just fetched, per account, on the
unique (account, ref) index; recorded once however often (or by however many
processes) it is written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from sealbot.store import UnitOfWork
from sealbot.store.models import WatchdogFlag
from sealbot.store.repositories.watchdog import WatchdogFlags

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _accounts(uow: Callable[[], UnitOfWork]) -> tuple[int, int, int]:
    with uow() as u:
        owner = u.users.add("watched@example.com", "h").id
        first = u.accounts.add(owner, "binance", "main").id
        second = u.accounts.add(owner, "binance", "spare").id
    return owner, first, second


def test_only_the_refs_asked_about_that_were_flagged_on_that_account_come_back(
        uow: Callable[[], UnitOfWork]) -> None:
    owner, first, second = _accounts(uow)
    with uow() as u:
        WatchdogFlags(u.session).add(owner, first, ["order:BTC/USDT:1", "trade:BTC/USDT:9"], None, T0)
    with uow() as u:
        flags = WatchdogFlags(u.session)
        assert flags.flagged(first, ["order:BTC/USDT:1", "order:BTC/USDT:2"]) == {"order:BTC/USDT:1"}
        assert flags.flagged(first, ["order:ETH/USDT:1"]) == set()  # ids are per pair
        assert flags.flagged(second, ["order:BTC/USDT:1", "trade:BTC/USDT:9"]) == set()
        assert flags.flagged(first, []) == set()


def test_a_flag_written_twice_is_kept_once_without_an_error(uow: Callable[[], UnitOfWork]) -> None:
    owner, first, _ = _accounts(uow)
    for _ in range(2):
        with uow() as u:
            WatchdogFlags(u.session).add(owner, first, ["order:BTC/USDT:1", "order:BTC/USDT:1"], None, T0)
    with uow() as u:
        assert u.session.scalar(sa.select(sa.func.count()).select_from(WatchdogFlag)) == 1


def test_a_long_list_of_fetched_ids_is_looked_up_in_chunks(uow: Callable[[], UnitOfWork]) -> None:
    owner, first, _ = _accounts(uow)
    flagged = [f"trade:BTC/USDT:{n}" for n in range(0, 1500, 7)]
    with uow() as u:
        WatchdogFlags(u.session).add(owner, first, flagged, None, T0)
    with uow() as u:
        asked = [f"trade:BTC/USDT:{n}" for n in range(1200)]
        assert WatchdogFlags(u.session).flagged(first, asked) == set(flagged) & set(asked)


def test_the_lookup_is_an_index_search_not_a_scan(uow: Callable[[], UnitOfWork]) -> None:
    _accounts(uow)
    with uow() as u:
        stmt = sa.select(WatchdogFlag.ref).where(WatchdogFlag.account_id == 1,
                                                 WatchdogFlag.ref.in_(["order:BTC/USDT:1", "order:BTC/USDT:2"]))
        dialect = u.session.get_bind().dialect.name
        if dialect == "sqlite":
            compiled = stmt.compile(u.session.get_bind(), compile_kwargs={"literal_binds": True})
            plan = " ".join(str(row[-1]) for row in u.session.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}")))
            assert "SEARCH watchdog_flags USING COVERING INDEX" in plan, plan
        else:  # PostgreSQL: the index exists; its planner may prefer a scan of a table this small
            indexes = sa.inspect(u.session.get_bind()).get_unique_constraints("watchdog_flags")
            assert [c["column_names"] for c in indexes] == [["account_id", "ref"]]
