"""Run the schema migrations from code: ``upgrade``, ``downgrade``, ``current``.

The migration scripts ship inside the package (``store/migrations``), located from this
file, so these work from any working directory and from an installed wheel. No
``alembic.ini`` is read; the open connection is handed to the Alembic environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import URL

from sealbot.domain.errors import InvalidConfig
from sealbot.store.db import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def upgrade(url: str | URL, revision: str = "head", *, attributes: Mapping[str, Any] | None = None) -> str | None:
    """Migrate the database at ``url`` up to ``revision``; returns the revision reached.

    ``attributes`` reach the migration scripts through Alembic's ``config.attributes``:
    what a data migration needs from layers the store may not import (migration 0008
    takes ``channel_key_sealer`` and ``clear_unsealable_channel_keys``, see its docstring).
    """
    check_revision(revision)
    return _run(url, "upgrade", revision, attributes)


def check_revision(revision: str) -> None:
    """Refuse, before touching the database, a target that no shipped migration is
    (``sealbot db upgrade 9999``): ``InvalidConfig`` naming it and the newest one.
    Relative targets (``+1``, ``head-1``, ``0008@head``) are Alembic's to resolve against
    the database's current revision; they pass unchecked."""
    if not re.fullmatch(r"\w+", revision):
        return
    script = ScriptDirectory.from_config(_config())
    try:
        script.get_revisions(revision)
    except CommandError:
        raise InvalidConfig("revision", f"{revision!r} is not a migration of this sealbot "
                                        f"(the newest is {script.get_current_head()})") from None


def downgrade(url: str | URL, revision: str = "base") -> str | None:
    """Migrate down to ``revision`` (``base`` drops every sealbot table)."""
    return _run(url, "downgrade", revision)


def current(url: str | URL) -> str | None:
    """The revision the database is at, or None for an empty (unmigrated) database."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head() -> str | None:
    """The newest revision shipped with this version of sealbot."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def _run(url: str | URL, direction: str, revision: str, attributes: Mapping[str, Any] | None = None) -> str | None:
    cfg = _config()
    cfg.attributes.update(attributes or {})
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            if direction == "upgrade":
                command.upgrade(cfg, revision)
            else:
                command.downgrade(cfg, revision)
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
