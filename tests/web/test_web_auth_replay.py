"""Through the HTTP API (SQLite and PostgreSQL): a two-factor code is good once. The
code that turned 2FA on, a code used to log in, and one code sent by two clients at the
same moment each let in at most one request; the next step's code works."""

from __future__ import annotations

import asyncio
import threading

import sqlalchemy as sa

from sealbot.custody.secrets import Secret
from sealbot.custody.totp import TotpSigner
from sealbot.services.platform import Platform

from .webkit import PASSWORD, Clients, signup


class BarrierSigner:
    """The platform's signer, holding each matched code until ``parties`` requests have
    one, so they all reach the database's compare-and-set together."""

    def __init__(self, inner: TotpSigner, parties: int) -> None:
        self.inner, self.barrier = inner, threading.Barrier(parties, timeout=20)

    def seal_totp_secret(self, owner_id: int, secret: Secret) -> bytes:
        return self.inner.seal_totp_secret(owner_id, secret)

    def match_totp(self, owner_id: int, sealed: bytes, code: str) -> int | None:
        step = self.inner.match_totp(owner_id, sealed, code)
        self.barrier.wait()
        return step


async def test_a_code_logs_in_once_through_the_api_and_the_next_one_works(http: Clients,
                                                                          platform: Platform) -> None:
    user = await signup(http, "once@example.org")
    login = {"email": user.email, "password": PASSWORD}
    r = await http.new().post("/api/v1/auth/login", json={**login, "totp_code": user.code()})
    assert r.status_code == 401 and r.json()["reason"] == "totp_required"  # spent by the confirmation
    code = user.next_code()
    r = await http.new().post("/api/v1/auth/login", json={**login, "totp_code": code})
    assert r.status_code == 200 and r.json()["mfa"] is True
    r = await http.new().post("/api/v1/auth/login", json={**login, "totp_code": code})
    assert r.status_code == 401 and r.json()["reason"] == "totp_required"
    r = await user.client.post("/api/v1/auth/2fa/disable", json={"code": code})
    assert r.status_code == 422 and r.json()["field"] == "code"
    assert (await user.client.get("/api/v1/users/me")).json()["totp_enabled"]
    r = await http.new().post("/api/v1/auth/login", json={**login, "totp_code": user.next_code()})
    assert r.status_code == 200 and r.json()["mfa"] is True
    with platform.session_factory() as s:
        replays = s.scalar(sa.text("select count(*) from audit_log where action = 'auth.totp_replayed'"))
    assert replays == 3


async def test_one_code_sent_by_two_clients_at_once_lets_one_in(http: Clients, platform: Platform) -> None:
    user = await signup(http, "race@example.org")
    code = user.next_code()
    signer = platform.signer
    assert isinstance(signer, TotpSigner)
    platform.signer = BarrierSigner(signer, 2)  # type: ignore[assignment]  # the app's platform: same object
    try:
        body = {"email": user.email, "password": PASSWORD, "totp_code": code}
        results = await asyncio.gather(http.new().post("/api/v1/auth/login", json=body),
                                       http.new().post("/api/v1/auth/login", json=body))
    finally:
        platform.signer = signer  # type: ignore[assignment]
    assert sorted(r.status_code for r in results) == [200, 401], [r.text for r in results]
    assert [r.json().get("mfa") for r in results if r.status_code == 200] == [True]
