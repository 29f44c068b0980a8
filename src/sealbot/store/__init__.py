"""Storage: SQLAlchemy 2 models, repositories, the unit of work and Alembic migrations.

Imports only ``sealbot.domain``. Entry points:

- ``make_engine(url)`` / ``make_session_factory(engine)`` (``store.db``)
- ``UnitOfWork(session_factory)`` (``store.uow``)
- ``upgrade(url)``, ``downgrade(url)``, ``current(url)`` (``store.migrate``)
"""

from sealbot.store.db import make_engine, make_session_factory, normalize_url
from sealbot.store.errors import Conflict
from sealbot.store.migrate import current, downgrade, upgrade
from sealbot.store.uow import UnitOfWork

__all__ = ["Conflict", "UnitOfWork", "current", "downgrade", "make_engine", "make_session_factory",
           "normalize_url", "upgrade"]
