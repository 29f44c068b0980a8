"""The audit log: appends chain, verify names the record an attacker touched, and
the database itself refuses edits until an attacker with DB access removes the guard."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from datetime import UTC
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from sealbot import audit
from sealbot.audit.chain import GENESIS_HASH, canonical_json, record_hash
from sealbot.store import UnitOfWork
from sealbot.store.repositories import AuditRepository


def _append(factory: sessionmaker[Session], n: int, start: int = 0) -> None:
    with factory.begin() as session:
        for i in range(start, start + n):
            audit.record(session, actor=f"user:{i % 3}", action="account.linked", subject=f"account:{i}",
                         details={"i": i, "amount": Decimal("1.50"), "pairs": ["BTC/USDT"]})


def _verify(factory: sessionmaker[Session]) -> audit.VerifyReport:
    with factory() as session:
        return audit.verify(session)


def _ids(engine: Engine) -> dict[int, int]:
    with engine.connect() as conn:
        return {int(seq): int(ident) for seq, ident in conn.execute(sa.text("SELECT seq, id FROM audit_log"))}


def _tamper(engine: Engine, *statements: str) -> None:
    """What an attacker with database access does: remove the guard, then edit."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(sa.text("DROP TRIGGER audit_log_no_update"))
            conn.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
        else:
            conn.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        for statement in statements:
            conn.execute(sa.text(statement))


def test_appended_records_form_a_verifiable_chain(session_factory: sessionmaker[Session]) -> None:
    _append(session_factory, 5)
    report = _verify(session_factory)
    assert report.ok, report.summary()
    assert (report.records, report.last_seq) == (5, 5)
    with session_factory() as session:
        rows = list(AuditRepository(session).in_order())
    assert rows[0].prev_hash == GENESIS_HASH
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    first = rows[0]
    # The documented canonical encoding reproduces the stored hash independently.
    at_text = first.at.astimezone(UTC).isoformat(timespec="microseconds")
    body = {"action": first.action, "actor": first.actor, "at": at_text,
            "details": {"amount": "1.50", "i": 0, "pairs": ["BTC/USDT"]}, "prev_hash": GENESIS_HASH,
            "seq": 1, "subject": first.subject}
    assert hashlib.sha256(canonical_json(body).encode()).hexdigest() == first.hash
    assert first.details == '{"amount":"1.50","i":0,"pairs":["BTC/USDT"]}'


def test_an_empty_log_verifies(session_factory: sessionmaker[Session]) -> None:
    report = _verify(session_factory)
    assert report.ok and report.records == 0


def test_a_rolled_back_transaction_leaves_no_record(session_factory: sessionmaker[Session]) -> None:
    with pytest.raises(RuntimeError), session_factory.begin() as session:
        audit.record(session, actor="system", action="x")
        raise RuntimeError("the change failed")
    _append(session_factory, 1)
    report = _verify(session_factory)
    assert report.ok and report.last_seq == 1


def test_the_database_refuses_update_and_delete(engine: Engine, session_factory: sessionmaker[Session]) -> None:
    _append(session_factory, 2)
    for statement in ("UPDATE audit_log SET actor = 'attacker' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 2"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))
    if engine.dialect.name == "postgresql":
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE audit_log"))
    assert _verify(session_factory).ok


def test_an_edited_record_is_named(engine: Engine, session_factory: sessionmaker[Session]) -> None:
    _append(session_factory, 6)
    _tamper(engine, "UPDATE audit_log SET details = '{\"i\": 3, \"amount\": \"999\"}' WHERE seq = 4")
    report = _verify(session_factory)
    assert not report.ok
    first = report.first_break
    assert first is not None
    assert (first.kind, first.seq, first.record_id) == ("edited", 4, _ids(engine)[4])
    assert f"record id {_ids(engine)[4]}" in report.summary()


def test_an_edit_that_recomputes_the_hash_still_breaks_the_next_link(engine: Engine,
                                                                     session_factory: sessionmaker[Session]) -> None:
    _append(session_factory, 4)
    with session_factory() as session:
        row = next(r for r in AuditRepository(session).in_order() if r.seq == 2)
    forged = record_hash(seq=2, at=row.at, actor="attacker", action=row.action, subject=row.subject, details={},
                         prev_hash=row.prev_hash)
    _tamper(engine, f"UPDATE audit_log SET actor = 'attacker', details = '{{}}', hash = '{forged}' WHERE seq = 2")
    report = _verify(session_factory)
    kinds = {(b.kind, b.seq) for b in report.breaks}
    assert ("broken_link", 3) in kinds or ("reordered", 3) in kinds
    assert report.first_break is not None and report.first_break.seq == 3


def test_a_deleted_record_is_named(engine: Engine, session_factory: sessionmaker[Session]) -> None:
    _append(session_factory, 5)
    ids = _ids(engine)
    _tamper(engine, "DELETE FROM audit_log WHERE seq = 3")
    report = _verify(session_factory)
    first = report.first_break
    assert first is not None
    assert (first.kind, first.seq) == ("missing", 3)
    assert f"record id {ids[4]}" in first.detail
    # The next record's link points at a hash no longer present.
    assert any(b.kind == "broken_link" and b.record_id == ids[4] for b in report.breaks)


def test_a_deleted_and_renumbered_record_is_caught(engine: Engine, session_factory: sessionmaker[Session]) -> None:
    _append(session_factory, 4)
    ids = _ids(engine)
    _tamper(engine, "DELETE FROM audit_log WHERE seq = 2", "UPDATE audit_log SET seq = seq - 1 WHERE seq > 2")
    report = _verify(session_factory)
    assert not report.ok
    assert report.first_break is not None and report.first_break.record_id == ids[3]


def test_records_cut_off_the_end_are_detected(engine: Engine, session_factory: sessionmaker[Session]) -> None:
    _append(session_factory, 4)
    _tamper(engine, "DELETE FROM audit_log WHERE seq = 4")
    report = _verify(session_factory)
    assert [(b.kind, b.seq) for b in report.breaks] == [("truncated", 4)]


def test_swapped_records_are_reported_as_reordered(engine: Engine, session_factory: sessionmaker[Session]) -> None:
    _append(session_factory, 5)
    ids = _ids(engine)
    _tamper(engine,
            "UPDATE audit_log SET seq = -1 WHERE seq = 2",
            "UPDATE audit_log SET seq = 2 WHERE seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE seq = -1")
    report = _verify(session_factory)
    reordered = {b.record_id for b in report.breaks if b.kind == "reordered"}
    assert {ids[2], ids[3]} <= reordered, report.summary()
    assert not any(b.kind == "edited" for b in report.breaks)
    assert report.first_break is not None and report.first_break.seq == 2
    assert report.first_break.record_id == ids[3]


def test_rows_moved_between_ids_are_reported_as_reordered(engine: Engine,
                                                         session_factory: sessionmaker[Session]) -> None:
    _append(session_factory, 4)
    ids = _ids(engine)
    _tamper(engine,
            f"UPDATE audit_log SET id = -1 WHERE id = {ids[2]}",
            f"UPDATE audit_log SET id = {ids[2]} WHERE id = {ids[3]}",
            f"UPDATE audit_log SET id = {ids[3]} WHERE id = -1")
    report = _verify(session_factory)
    assert [b.kind for b in report.breaks] == ["reordered"]
    assert report.breaks[0].seq == 3


def test_concurrent_appends_never_fork_the_chain(session_factory: sessionmaker[Session]) -> None:
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for j in range(5):
                _append(session_factory, 1, start=k * 100 + j)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = _verify(session_factory)
    assert report.ok, report.summary()
    assert report.records == 20


def test_audit_log_fits_the_custody_sink(uow: Callable[[], UnitOfWork]) -> None:
    with uow() as u:
        audit.AuditLog(u.session).record("signer", "credential.accessed", "account:1", {"purpose": "order"})
    with uow() as u:
        assert u.audit_rows.count(action="credential.accessed") == 1
        assert audit.verify(u.session).ok


def test_details_must_be_json(session_factory: sessionmaker[Session]) -> None:
    with pytest.raises(TypeError), session_factory.begin() as session:
        audit.record(session, actor="system", action="x", details={"bad": object()})


def test_verify_database_opens_the_url(database_url: str, session_factory: sessionmaker[Session],
                                       engine: Engine) -> None:
    _append(session_factory, 3)
    assert audit.verify_database(database_url).ok
    _tamper(engine, "UPDATE audit_log SET action = 'nothing.happened' WHERE seq = 2")
    report = audit.verify_database(database_url)
    assert report.first_break is not None and report.first_break.kind == "edited"
    assert "BROKEN" in report.summary() and f"record id {_ids(engine)[2]}" in report.summary()
