"""Sealed credential rows: versions, rotation batches, rewrapping, destruction."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from sealbot.domain import NotFound
from sealbot.store import UnitOfWork, make_engine, make_session_factory, upgrade
from sealbot.store.db import checkpoint
from sealbot.store.models import Base

BLOB = os.urandom(48)


def _seed(uow: Callable[[], UnitOfWork], n_accounts: int = 3) -> tuple[int, list[int]]:
    with uow() as u:
        owner = u.users.add("o@example.com", "h").id
        accounts = [u.accounts.add(owner, "binance", f"a{i}").id for i in range(n_accounts)]
        for account in accounts:
            u.credentials.add(owner, account, algorithm="hmac-sha256", kek_id="kek-old", wrapped_key=b"W" * 40,
                              nonce=b"N" * 12, ciphertext=BLOB, api_key_hint="ab12", version=1)
    return owner, accounts


def test_no_column_could_hold_a_plaintext_secret() -> None:
    columns = {c.name for c in Base.metadata.tables["credentials"].columns}
    assert not columns & {"secret", "api_key", "api_secret", "passphrase", "private_key", "plaintext"}
    assert Base.metadata.tables["credentials"].c.api_key_hint.type.length == 4  # type: ignore[attr-defined]


def test_hint_longer_than_four_characters_is_refused(uow: Callable[[], UnitOfWork]) -> None:
    owner, accounts = _seed(uow, 1)
    with pytest.raises(ValueError, match="last 4"), uow() as u:
        u.credentials.add(owner, accounts[0], algorithm="hmac-sha256", kek_id="k", wrapped_key=b"", nonce=b"",
                          ciphertext=b"", api_key_hint="whole-api-key")


def test_current_is_the_newest_live_version(uow: Callable[[], UnitOfWork]) -> None:
    owner, (account, *_) = _seed(uow, 1)
    with uow() as u:
        assert u.credentials.next_version(owner, account) == 2
        u.credentials.add(owner, account, algorithm="ed25519", kek_id="kek-old", wrapped_key=b"w", nonce=b"n",
                          ciphertext=b"v2", public_key="-----BEGIN PUBLIC KEY-----")
    with uow() as u:
        current = u.credentials.current(owner, account)
        assert (current.version, current.algorithm, current.ciphertext) == (2, "ed25519", b"v2")
    with pytest.raises(sa.exc.IntegrityError), uow() as u:  # (account, version) is unique
        u.credentials.add(owner, account, algorithm="hmac-sha256", kek_id="k", wrapped_key=b"", nonce=b"",
                          ciphertext=b"", version=2)


def test_rotation_batches_follow_the_cursor_and_rewrap_once(uow: Callable[[], UnitOfWork]) -> None:
    _seed(uow, 5)
    with uow() as u:
        rotation = u.kek_rotations.start_or_resume("kek-old", "kek-new")
        first = u.credentials.batch_by_kek("kek-old", rotation.cursor, limit=2)
        for row in first:
            u.credentials.update_wrapping(row.id, "kek-new", b"R" * 40, expected_kek_id="kek-old")
        u.kek_rotations.advance(rotation.id, first[-1].id, len(first))
    # "killed" here: a new run resumes the same rotation from its cursor
    with uow() as u:
        resumed = u.kek_rotations.start_or_resume("kek-old", "kek-new")
        assert (resumed.id, resumed.cursor, resumed.done) == (rotation.id, first[-1].id, 2)
        rest = [row.id for batch in u.credentials.iter_by_kek("kek-old", resumed.cursor, batch_size=2) for row in batch]
        assert len(rest) == 3 and min(rest) > first[-1].id
        with pytest.raises(NotFound):  # already rewrapped: a re-run cannot rewrap it twice
            u.credentials.update_wrapping(first[0].id, "kek-new", b"X", expected_kek_id="kek-old")
        for ident in rest:
            u.credentials.update_wrapping(ident, "kek-new", b"R" * 40, expected_kek_id="kek-old")
        u.kek_rotations.advance(rotation.id, rest[-1], len(rest))
        u.kek_rotations.finish(rotation.id)
    with uow() as u:
        assert u.credentials.count_by_kek() == {"kek-new": 5}
        assert u.kek_rotations.unfinished() is None
        assert u.kek_rotations.get(rotation.id).done == 5
        assert all(row.ciphertext == BLOB for row in u.credentials.batch_by_kek("kek-new"))


def test_destroy_overwrites_the_blobs(uow: Callable[[], UnitOfWork]) -> None:
    owner, accounts = _seed(uow, 3)
    with uow() as u:
        assert u.credentials.destroy_for_account(owner, accounts[0]) == 1
        assert u.credentials.destroy_for_account(owner, accounts[0]) == 0  # already gone
    with uow() as u:
        rows = u.credentials.list_for_account(owner, accounts[0])
        assert [(r.ciphertext, r.wrapped_key, r.nonce) for r in rows] == [(b"", b"", b"")]
        assert rows[0].destroyed_at is not None
        with pytest.raises(NotFound):
            u.credentials.current(owner, accounts[0])
        assert u.credentials.batch_by_kek("kek-old") != []
        assert u.credentials.destroy_all() == 2
    with uow() as u:
        assert u.credentials.batch_by_kek("kek-old") == []
        assert u.credentials.count_by_kek() == {}


def test_destroyed_blob_is_gone_from_the_sqlite_files(sqlite_url: str) -> None:
    """SQLite only (a file we can read); PostgreSQL's WAL and dead tuples: docs/storage.md."""
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    factory = make_session_factory(engine)
    owner, _ = _seed(lambda: UnitOfWork(factory), 2)
    checkpoint(engine)
    path = Path(engine.url.database or "")
    assert BLOB in path.read_bytes()
    with UnitOfWork(factory) as u:
        u.credentials.destroy_for_owner(owner)
    checkpoint(engine)
    engine.dispose()
    files = [path, *path.parent.glob(path.name + "-*")]
    assert all(BLOB not in f.read_bytes() for f in files if f.exists())
