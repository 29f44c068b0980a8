"""Web fixtures: a platform on the ``database_url`` backend with simex as Binance, the
app, HTTP clients through the real ASGI stack, and the secret-leak scan: every
response body and header a test produced is checked for the secrets it registered."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sealbot.config import load_settings
from sealbot.services.instance import init_instance
from sealbot.services.platform import Platform, open_platform
from sealbot.simex import SimexServer
from sealbot.web.app import create_app

from .webkit import PASSWORD, Clients, CodeClock, LeakScan


@pytest.fixture(scope="session")
def simex() -> Iterator[SimexServer]:
    with SimexServer(speed=0) as server:
        yield server


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


@pytest.fixture
def leaks() -> Iterator[LeakScan]:
    scan = LeakScan()
    scan.never.add(PASSWORD)
    yield scan
    scan.check()


@pytest.fixture
async def http(platform: Platform, leaks: LeakScan, totp_clock: CodeClock) -> AsyncIterator[Clients]:
    app = create_app(platform)
    clients = Clients(app, leaks, totp_clock)
    yield clients
    await clients.close()


