"""Store fixtures: a migrated database on each backend and a unit-of-work factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from sealbot.store import UnitOfWork, make_engine, make_session_factory, upgrade


@pytest.fixture
def database_url(migrated_database_url: str) -> str:
    """These tests do not test the migrations: their database starts at the newest schema
    (tests/conftest.py), which saves about a second per PostgreSQL test."""
    return migrated_database_url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def uow(session_factory: sessionmaker[Session]) -> Callable[[], UnitOfWork]:
    return lambda: UnitOfWork(session_factory)
