"""Fixtures shared by the whole suite.

``database_url`` yields a fresh, empty database for each test that asks for it: a
SQLite file always, and a throwaway PostgreSQL database too when
``SEALBOT_TEST_DATABASE_URL`` is set (CI sets it). Tests parametrised this way run
once per backend.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from hypothesis import HealthCheck, settings

from sealbot.custody import totp

# The suite runs two workers on two cores beside heavy integration tests (and CI's machine
# may be shared): how fast Hypothesis draws inputs or runs one example there says nothing
# about the code, whose speed is measured in bench/. A test may still set its own limits.
settings.register_profile("sealbot", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("sealbot")

PG_URL = os.environ.get("SEALBOT_TEST_DATABASE_URL", "")

# CI sets these so that a missing package fails the run instead of skipping its tests.
_REQUIRED = {
    "SEALBOT_TEST_REQUIRE_SOFTHSM": ("/usr/lib/softhsm/libsofthsm2.so", "SoftHSM2 (Debian package softhsm2)"),
    "SEALBOT_TEST_REQUIRE_BROWSER": ("/usr/bin/chromium", "Chromium (Debian package chromium)"),
}


def pytest_sessionstart(session: pytest.Session) -> None:
    for variable, (path, what) in _REQUIRED.items():
        if os.environ.get(variable) == "1" and not Path(path).exists():
            pytest.exit(f"{variable}=1 but {what} is not installed ({path} missing)", returncode=1)

_BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def _pg_admin_url() -> str:
    # psycopg 3 driver; the admin connection uses the given database to CREATE/DROP.
    return PG_URL.replace("postgresql://", "postgresql+psycopg://", 1) if PG_URL.startswith(
        "postgresql://"
    ) else PG_URL


@pytest.fixture(params=_BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each configured backend, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sealbot.db'}"
        return
    import sqlalchemy as sa

    name = f"sealbot_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = sa.engine.make_url(_pg_admin_url())
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``load_settings`` sees no ``SEALBOT_*`` variable of the machine (the tests' own
    ``SEALBOT_TEST_*`` stay) and an empty config file: only what the test sets."""
    for name in list(os.environ):
        if name.startswith("SEALBOT_") and not name.startswith("SEALBOT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SEALBOT_CONFIG", str(tmp_path / "absent.toml"))
    (tmp_path / "absent.toml").write_text("")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sealbot.db'}"


class TotpClock:
    """The signer's clock for two-factor codes (``custody.totp.wall_clock``), moved by the
    test: a code is good once, so a test that needs a second code takes the next step's
    (``tick``) instead of sleeping 30 s."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def tick(self, steps: int = 1) -> None:
        self.now += totp.STEP_SECONDS * steps

    def code(self, secret: str) -> str:
        """What an authenticator app shows now for ``secret``."""
        return pyotp.TOTP(secret).at(int(self.now))


@pytest.fixture
def totp_clock(monkeypatch: pytest.MonkeyPatch) -> TotpClock:
    """Every signer in this process (in process or a socket server in a thread) checks codes
    against this clock; it starts 5 s into the current real step and moves only when told."""
    clock = TotpClock(float(totp.time_step(time.time()) * totp.STEP_SECONDS + 5))
    monkeypatch.setattr(totp, "wall_clock", clock)
    return clock
