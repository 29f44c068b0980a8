"""The platform the service tests that trade on simex share: a fresh instance on the
test's database, its Binance pointed at the module's own ``simex`` fixture (each module
picks the simulator's speed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealbot.config import load_settings
from sealbot.services.instance import init_instance
from sealbot.services.platform import Platform, open_platform
from sealbot.simex import SimexServer


@pytest.fixture
def database_url(migrated_database_url: str) -> str:
    """These tests do not test the migrations: their database starts at the newest schema
    (tests/conftest.py), which saves about a second per PostgreSQL test."""
    return migrated_database_url


@pytest.fixture
def platform(tmp_path: Path, database_url: str, simex: SimexServer) -> Platform:
    settings = load_settings(data_dir=tmp_path / "data", config_dir=tmp_path / "config", database_url=database_url)
    init_instance(settings)
    return open_platform(settings, exchange_urls={"binance": {"api_base": simex.base_url}}, egress_ip="127.0.0.1")
