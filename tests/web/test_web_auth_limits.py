"""Sign-up and login limits through the HTTP API and the dashboard: ``registration =
"closed"`` refuses self-service sign-up once the instance has its first user (its
admin); one client address is limited in failed logins (whatever the e-mails) and in
sign-ups, answered 429 with Retry-After; the lockout's rows for e-mails tried (unknown
ones included) and the per-address rows do not pile up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from sealbot.config import load_settings
from sealbot.domain.errors import InvalidConfig
from sealbot.services import auth
from sealbot.services.instance import init_instance
from sealbot.services.platform import Platform, open_platform
from sealbot.simex import SimexServer
from sealbot.store.models import IpThrottle, LoginThrottle
from sealbot.web.app import create_app

from .webkit import PASSWORD, LeakScan

SAME_SITE = {"sec-fetch-site": "same-origin"}


def _client(app: object, leaks: LeakScan, ip: str) -> httpx.AsyncClient:
    """A client whose requests come from ``ip`` (the socket's peer, as uvicorn reports it)."""

    async def hook(response: httpx.Response) -> None:
        await response.aread()
        leaks.record(response)

    transport = httpx.ASGITransport(app=app, client=(ip, 50000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", event_hooks={"response": [hook]})


@pytest.fixture
def closed_platform(tmp_path: Path, database_url: str, simex: SimexServer) -> Platform:
    settings = load_settings(data_dir=tmp_path / "data", config_dir=tmp_path / "config", database_url=database_url,
                             registration="closed")
    init_instance(settings)
    return open_platform(settings, exchange_urls={"binance": {"api_base": simex.base_url}}, egress_ip="127.0.0.1")


@pytest.fixture
async def closed(closed_platform: Platform, leaks: LeakScan) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(create_app(closed_platform), leaks, "127.0.0.1") as client:
        yield client


@pytest.fixture
async def app_client(platform: Platform, leaks: LeakScan) -> AsyncIterator[tuple[object, httpx.AsyncClient]]:
    app = create_app(platform)
    async with _client(app, leaks, "192.0.2.7") as client:
        yield app, client


def _count(platform: Platform, model: type[LoginThrottle] | type[IpThrottle]) -> int:
    with platform.session_factory() as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def _age(platform: Platform, by: timedelta) -> None:
    """Move every throttle row back in time by ``by``: what waiting that long does."""
    with platform.session_factory() as s:
        for row in s.scalars(sa.select(LoginThrottle)):
            row.last_failure_at = row.last_failure_at - by if row.last_failure_at else None
            row.locked_until = row.locked_until - by if row.locked_until else None
        for ip_row in s.scalars(sa.select(IpThrottle)):
            ip_row.window_start -= by
        s.commit()


# --- registration = "closed" ---------------------------------------------------------------


async def test_closed_registration_lets_only_the_first_user_sign_up(closed: httpx.AsyncClient,
                                                                    closed_platform: Platform) -> None:
    page = await closed.get("/register")
    assert page.status_code == 200 and 'action="/register"' in page.text  # an empty instance: the admin's sign-up
    r = await closed.post("/api/v1/auth/register", json={"email": "admin@example.org", "password": PASSWORD})
    assert r.status_code == 201, r.text
    assert r.json()["is_admin"] is True

    r = await closed.post("/api/v1/auth/register", json={"email": "eve@example.org", "password": PASSWORD})
    assert r.status_code == 403
    assert r.json()["rule"] == "registration" and "closed" in r.json()["reason"]
    # an e-mail already registered gets the same answer: nothing about e-mails is told
    r = await closed.post("/api/v1/auth/register", json={"email": "admin@example.org", "password": PASSWORD})
    assert r.status_code == 403 and r.json()["rule"] == "registration"

    page = await closed.get("/register")
    assert page.status_code == 200 and "Registration is closed" in page.text and 'action="/register"' not in page.text
    page = await closed.post("/register", data={"email": "mallory@example.org", "password": PASSWORD},
                             headers=SAME_SITE)
    assert page.status_code == 403 and "Registration is closed" in page.text
    with closed_platform.uow() as uow:
        assert uow.users.count() == 1

    r = await closed.post("/api/v1/auth/login", json={"email": "admin@example.org", "password": PASSWORD})
    assert r.status_code == 200, r.text


async def test_closed_registration_on_the_dashboard_makes_the_first_user_admin(
        closed: httpx.AsyncClient, closed_platform: Platform) -> None:
    page = await closed.post("/register", data={"email": "admin@example.org", "password": PASSWORD},
                             headers=SAME_SITE)
    assert page.status_code == 303, page.text  # registered and logged in
    with closed_platform.uow() as uow:
        assert uow.users.by_email("admin@example.org").is_admin


def test_the_registration_setting_comes_from_the_environment_and_is_checked(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEALBOT_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    assert load_settings().registration == "open"  # the default: as before the setting existed
    monkeypatch.setenv("SEALBOT_REGISTRATION", "closed")
    assert load_settings().registration == "closed"
    monkeypatch.setenv("SEALBOT_REGISTRATION", "invite")
    with pytest.raises(InvalidConfig) as bad:
        load_settings()
    assert bad.value.field == "registration"


# --- per-address limits ------------------------------------------------------------------


async def test_one_address_spraying_a_password_over_many_emails_is_refused(
        app_client: tuple[object, httpx.AsyncClient], platform: Platform, leaks: LeakScan) -> None:
    app, sprayer = app_client
    async with _client(app, leaks, "198.51.100.9") as victim:
        r = await victim.post("/api/v1/auth/register", json={"email": "victim@example.org", "password": PASSWORD})
        assert r.status_code == 201, r.text
    for n in range(auth.IP_MAX_FAILURES):  # never the same e-mail twice: the per-account lockout never trips
        r = await sprayer.post("/api/v1/auth/login", json={"email": f"user{n}@example.org", "password": PASSWORD})
        assert r.status_code == 401, (n, r.text)
    r = await sprayer.post("/api/v1/auth/login", json={"email": "victim@example.org", "password": PASSWORD})
    assert r.status_code == 429, r.text  # refused before the password is looked at, even the right one
    assert "address" in r.json()["reason"]
    assert 0 < int(r.headers["retry-after"]) <= int(auth.IP_WINDOW.total_seconds()) + 1
    # a forwarded-for header from an untrusted peer changes nothing
    r = await sprayer.post("/api/v1/auth/login", json={"email": "victim@example.org", "password": PASSWORD},
                           headers={"x-forwarded-for": "203.0.113.1"})
    assert r.status_code == 429
    page = await sprayer.post("/login", data={"email": "victim@example.org", "password": PASSWORD},
                              headers=SAME_SITE)
    assert page.status_code == 429 and "Too many failed logins from your address" in page.text
    with platform.session_factory() as s:  # the refused attempts were not counted against the victim's account
        assert s.get(LoginThrottle, "victim@example.org") is None
    async with _client(app, leaks, "198.51.100.9") as victim:  # another address is not limited
        r = await victim.post("/api/v1/auth/login", json={"email": "victim@example.org", "password": PASSWORD})
        assert r.status_code == 200, r.text
    _age(platform, auth.IP_WINDOW)  # the window has passed
    r = await sprayer.post("/api/v1/auth/login", json={"email": "victim@example.org", "password": PASSWORD})
    assert r.status_code == 200, r.text


async def test_one_address_is_limited_in_sign_ups(app_client: tuple[object, httpx.AsyncClient],
                                                  leaks: LeakScan) -> None:
    app, client = app_client
    for n in range(auth.IP_MAX_SIGNUPS):
        r = await client.post("/api/v1/auth/register", json={"email": f"bulk{n}@example.org", "password": PASSWORD})
        assert r.status_code == 201, (n, r.text)
    r = await client.post("/api/v1/auth/register", json={"email": "one-more@example.org", "password": PASSWORD})
    assert r.status_code == 429, r.text
    assert 0 < int(r.headers["retry-after"]) <= int(auth.SIGNUP_WINDOW.total_seconds()) + 1
    page = await client.post("/register", data={"email": "one-more@example.org", "password": PASSWORD},
                             headers=SAME_SITE)
    assert page.status_code == 429 and "Too many sign-ups" in page.text
    async with _client(app, leaks, "198.51.100.10") as other:
        r = await other.post("/api/v1/auth/register", json={"email": "one-more@example.org", "password": PASSWORD})
        assert r.status_code == 201, r.text


async def test_unknown_emails_do_not_pile_up_rows(app_client: tuple[object, httpx.AsyncClient],
                                                  platform: Platform, leaks: LeakScan) -> None:
    app, client = app_client
    for n in range(5):
        r = await client.post("/api/v1/auth/login", json={"email": f"nobody{n}@example.org", "password": "wrong"})
        assert r.status_code == 401
    assert _count(platform, LoginThrottle) == 5  # counted like real accounts: a lockout tells nothing
    _age(platform, auth.FAILURE_WINDOW + timedelta(seconds=1))
    async with _client(app, leaks, "198.51.100.11") as other:
        r = await other.post("/api/v1/auth/login", json={"email": "later@example.org", "password": "wrong"})
        assert r.status_code == 401
    assert _count(platform, LoginThrottle) == 1  # the stale rows went
    with platform.session_factory() as s:
        assert [row.ip for row in s.scalars(sa.select(IpThrottle))] == ["198.51.100.11"]


async def test_a_locked_account_keeps_its_row_until_the_lockout_ends(
        app_client: tuple[object, httpx.AsyncClient], platform: Platform, leaks: LeakScan) -> None:
    app, client = app_client
    for _ in range(auth.MAX_FAILURES):
        r = await client.post("/api/v1/auth/login", json={"email": "target@example.org", "password": "wrong"})
        assert r.status_code == 401
    with platform.session_factory() as s:  # the failures are past the window, the lockout still runs
        row = s.get(LoginThrottle, "target@example.org")
        assert row is not None and row.last_failure_at is not None
        row.last_failure_at -= auth.FAILURE_WINDOW + timedelta(minutes=1)
        s.commit()
    async with _client(app, leaks, "198.51.100.12") as other:
        r = await other.post("/api/v1/auth/login", json={"email": "else@example.org", "password": "wrong"})
        assert r.status_code == 401
        r = await other.post("/api/v1/auth/login", json={"email": "target@example.org", "password": "wrong"})
        assert r.status_code == 429  # the lockout was not pruned away
