"""Alembic environment for sealbot's schema.

Run programmatically through ``sealbot.store.migrate`` (which passes an open
connection in ``config.attributes["connection"]``) or, for development, with
``alembic -c src/sealbot/store/migrations/alembic.ini ...`` and a ``SEALBOT_DATABASE_URL``
/ ``sqlalchemy.url``. Batch mode is on so ALTERs work on SQLite (copy-and-move).
"""

from __future__ import annotations

import os

from alembic import context

from sealbot.store.db import make_engine
from sealbot.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("SEALBOT_DATABASE_URL", "")
    if not url:
        raise RuntimeError("no database URL: set sqlalchemy.url or SEALBOT_DATABASE_URL")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("sealbot migrations run online only (they create triggers per backend)")
run_migrations_online()
