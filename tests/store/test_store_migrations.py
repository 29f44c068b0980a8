"""Migrations run up, down and up again on every backend, and match the models."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from sealbot.store import current, downgrade, make_engine, normalize_url, upgrade
from sealbot.store.migrate import head
from sealbot.store.models import Base

TABLES = {"users", "exchange_accounts", "credentials", "kek_rotations", "bots", "deals", "orders", "fills",
          "alerts", "signals", "audit_log", "audit_head",
          # 0002 (web tier)
          "sessions", "api_tokens", "recovery_codes", "login_throttle", "bot_inbox", "bot_webhooks",
          # 0003 (portfolio, copy sets)
          "user_settings", "portfolio_snapshots", "balance_snapshots", "bot_groups", "bot_group_members",
          "account_guard_limits",
          # 0004 (alert delivery channels)
          "notification_channels",
          # 0005 (copy set webhook policy)
          "bot_group_webhooks",
          # 0006 (scale-out engine: partitions, epochs, workers, applied messages)
          "engine_partitions", "engine_account_partitions", "engine_workers", "engine_messages",
          # 0007 (what the watchdog flagged, per account)
          "watchdog_flags",
          # 0012 (the limits a user stores for all their accounts)
          "user_guard_limits",
          # 0014 (login and sign-up attempts per client address)
          "ip_throttle"}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """This module tests the migrations themselves: an empty database."""
    return empty_database_url


def test_up_down_up_leaves_the_full_schema(database_url: str) -> None:
    assert current(database_url) is None
    assert upgrade(database_url) == head()
    assert _tables(database_url) == TABLES
    assert downgrade(database_url) is None
    assert _tables(database_url) == set()
    assert upgrade(database_url) == head()
    assert _tables(database_url) == TABLES


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            opts = {"compare_type": True, "compare_server_default": True}
            diff = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_migrations_do_not_depend_on_the_working_directory(database_url: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert upgrade(database_url) == head()
    assert not list(tmp_path.glob("*.ini"))


def test_downgrade_removes_the_audit_triggers_too(database_url: str) -> None:
    upgrade(database_url)
    downgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                n = conn.scalar(sa.text("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"))
            else:
                n = conn.scalar(sa.text("SELECT count(*) FROM pg_proc WHERE proname = 'sealbot_audit_log_refuse'"))
    finally:
        engine.dispose()
    assert n == 0


@pytest.mark.parametrize(("given", "driver"), [
    ("postgresql://u:p@h:5432/db", "postgresql+psycopg"),
    ("postgres://u@h/db", "postgresql+psycopg"),
    ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
    ("sqlite:///x.db", "sqlite"),
])
def test_plain_postgresql_urls_use_psycopg3(given: str, driver: str) -> None:
    assert normalize_url(given).drivername == driver


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as conn:
            assert conn.scalar(sa.text("PRAGMA journal_mode")) == "wal"
            assert conn.scalar(sa.text("PRAGMA foreign_keys")) == 1
            assert conn.scalar(sa.text("PRAGMA busy_timeout")) >= 1000
    finally:
        engine.dispose()
