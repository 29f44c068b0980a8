"""Engine fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def database_url(migrated_database_url: str) -> str:
    """The engine tests do not test the migrations: their database starts at the newest
    schema (tests/conftest.py), so the ``upgrade`` they run first finds nothing to do."""
    return migrated_database_url
