"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production).

One place decides how sealbot talks to its database, so every caller (migrations,
the engine, the web tier, tests) gets the same connection settings:

- SQLite: WAL journal (readers never block the one writer), ``foreign_keys=ON``
  (SQLite ignores foreign keys unless asked, per connection) and a busy timeout so a
  second writer waits instead of failing at once.
  ``secure_delete`` is on, so overwritten content (a destroyed credential's blobs)
  is zeroed in the file rather than left in free pages; ``checkpoint`` folds the WAL
  into the main file and truncates it, so old page images do not linger there.
- PostgreSQL: psycopg 3. Plain ``postgresql://`` URLs (what operators paste) are
  rewritten to ``postgresql+psycopg://``; SQLAlchemy would otherwise pick psycopg2,
  which sealbot does not install.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 10_000


def normalize_url(url: str | URL) -> URL:
    """The URL with the driver sealbot uses: ``postgresql://`` and ``postgres://`` become psycopg 3."""
    parsed = sa.engine.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_sqlite(url_or_engine: str | URL | Engine) -> bool:
    url = url_or_engine.url if isinstance(url_or_engine, Engine) else sa.engine.make_url(url_or_engine)
    return url.get_backend_name() == "sqlite"


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        # In-memory databases cannot use WAL; SQLite silently keeps "memory" there.
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        # Deleted or overwritten content (destroyed credentials) is zeroed, not left in free pages.
        cursor.execute("PRAGMA secure_delete = ON")
    finally:
        cursor.close()


def make_engine(url: str | URL, *, echo: bool = False, **kwargs: Any) -> Engine:
    """An engine with sealbot's connection settings for the URL's backend.

    Extra keyword arguments go to ``sqlalchemy.create_engine`` unchanged.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        # Sessions may be used from the engine's worker threads; SQLite's own locking
        # (plus WAL) keeps this safe, the check only guards against misuse we avoid.
        connect_args.setdefault("check_same_thread", False)
        engine = sa.create_engine(parsed, echo=echo, connect_args=connect_args, **kwargs)
        sa.event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(parsed, echo=echo, **kwargs)


def make_session_factory(engine_or_url: Engine | str | URL) -> sessionmaker[Session]:
    """A sessionmaker bound to the engine; objects stay readable after commit."""
    engine = engine_or_url if isinstance(engine_or_url, Engine) else make_engine(engine_or_url)
    return sessionmaker(bind=engine, expire_on_commit=False, future=True)


def checkpoint(engine: Engine) -> None:
    """SQLite: copy the WAL into the database file and truncate the WAL to zero bytes,
    so page images from before a destroy are gone from disk. PostgreSQL: nothing to do
    here (its WAL and dead tuples are the DBA's retention policy; see docs/storage.md)."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
