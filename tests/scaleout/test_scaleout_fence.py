"""The epoch fence and the message ledger, on SQLite and PostgreSQL (no broker needed):
a claim makes the previous owner's writes fail, and a message is applied once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from sealbot.engine.scaleout.fence import CURRENT, FencedJournal, Scope
from sealbot.engine.scaleout.partitions import AlreadyApplied, Applied, Fenced, PartitionStore, default_partition
from sealbot.store import make_session_factory
from sealbot.store.migrate import upgrade
from sealbot.store.models import EngineMessage, ExchangeAccount, User


@pytest.fixture
def store(database_url: str) -> PartitionStore:
    upgrade(database_url)
    partitions = PartitionStore(make_session_factory(database_url), 8)
    partitions.ensure()
    partitions.ensure()  # idempotent
    return partitions


def _message(mid: str, epoch: int, seq: int = 1) -> Applied:
    return Applied(mid, 3, epoch, "w", "42", "note", seq, datetime.now(UTC))


def test_a_claim_fences_the_previous_owner(store: PartitionStore) -> None:
    journal = FencedJournal(store.session_factory, store)
    old = store.claim(3, "a")
    new = store.claim(3, "b")
    assert new == old + 1 and store.owner_of(3) == "b"
    token = CURRENT.set(Scope(3, old, _message("m1", old)))
    try:
        with pytest.raises(Fenced) as refused, journal.transaction():
            pass
    finally:
        CURRENT.reset(token)
    assert refused.value.current == new
    assert not store.heartbeat(3, old) and store.heartbeat(3, new)
    with store.session_factory() as session:  # the refused transaction left nothing behind
        assert session.scalar(sa.select(sa.func.count()).select_from(EngineMessage)) == 0


def test_a_message_is_applied_once(store: PartitionStore) -> None:
    journal = FencedJournal(store.session_factory, store)
    epoch = store.claim(3, "a")
    for attempt in range(2):
        scope = Scope(3, epoch, _message("m1", epoch))
        token = CURRENT.set(scope)
        try:
            if attempt == 0:
                with journal.transaction():
                    pass
                assert scope.recorded
            else:
                with pytest.raises(AlreadyApplied), journal.transaction():
                    pass
        finally:
            CURRENT.reset(token)
    with store.session_factory.begin() as session:
        assert store.record_many(session, [_message("m1", epoch), _message("m2", epoch, 2)]) == 1
    with store.session_factory() as session:
        assert [m.message_id for m in session.scalars(sa.select(EngineMessage).order_by(EngineMessage.id))] == \
            ["m1", "m2"]


def test_a_write_outside_a_partition_is_refused(store: PartitionStore) -> None:
    with pytest.raises(RuntimeError), FencedJournal(store.session_factory, store).transaction():
        pass


def test_accounts_map_to_partitions_by_crc32_unless_pinned(store: PartitionStore) -> None:
    with store.session_factory.begin() as session:
        user = User(email="p@example.test", password_hash="x")
        session.add(user)
        session.flush()
        accounts = [ExchangeAccount(owner_id=user.id, exchange="binance", label=str(i)) for i in range(20)]
        session.add_all(accounts)
        session.flush()
        ids = [str(a.id) for a in accounts]
    assert all(store.partition_of(i) == default_partition(i, 8) for i in ids)
    target = (default_partition(ids[0], 8) + 1) % 8
    store.assign(ids[0], target)
    assert store.partition_of(ids[0]) == target
    assert ids[0] in [a.id for a in store.accounts_of(target)]
    assert sorted(a.id for p in range(8) for a in store.accounts_of(p)) == sorted(ids)
    with pytest.raises(ValueError, match="partition"):
        store.assign(ids[0], 8)
