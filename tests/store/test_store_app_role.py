"""On PostgreSQL the application's role may only INSERT and SELECT audit records."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from sealbot import audit
from sealbot.store import current, make_engine, make_session_factory, upgrade
from sealbot.store.migrate import head


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """This module tests the migrations themselves: an empty database."""
    return empty_database_url


def test_a_missing_app_role_is_skipped_gracefully(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALBOT_DB_APP_ROLE", f"no_such_role_{uuid.uuid4().hex[:8]}")
    assert upgrade(database_url) == head() == current(database_url)


def test_app_role_gets_insert_and_select_only(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(database_url)
    if engine.dialect.name != "postgresql":
        # SQLite has no roles: the setting must not break the migration there.
        monkeypatch.setenv("SEALBOT_DB_APP_ROLE", "sealbot_app")
        assert upgrade(database_url) == head()
        engine.dispose()
        return
    role = f"sealbot_app_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}" NOLOGIN'))
    try:
        monkeypatch.setenv("SEALBOT_DB_APP_ROLE", role)
        upgrade(database_url)
        factory = make_session_factory(engine)
        with factory.begin() as session:  # the app role can append ...
            session.execute(sa.text(f'SET LOCAL ROLE "{role}"'))
            audit.record(session, actor="user:1", action="account.linked", subject="account:1")
            assert session.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one() == 1
        for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), engine.begin() as conn:
                conn.execute(sa.text(f'SET LOCAL ROLE "{role}"'))  # ... but not rewrite, even without triggers
                conn.execute(sa.text(statement))
        with pytest.raises(sa.exc.ProgrammingError), engine.begin() as conn:
            conn.execute(sa.text(f'SET LOCAL ROLE "{role}"'))
            conn.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        with factory() as session:
            assert audit.verify(session).ok
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
            conn.execute(sa.text(f'DROP ROLE "{role}"'))
        engine.dispose()
