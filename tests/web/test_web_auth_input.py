"""Bad input on the sign-up and log-in forms: a clear answer, never a server error."""

from __future__ import annotations

from .webkit import PASSWORD, Clients

TOO_LONG = "a" * 400 + "@example.org"  # longer than the users.email column (320)


async def test_an_overlong_email_is_refused_by_the_forms_and_the_api(http: Clients) -> None:
    client = http.new()
    r = await client.post("/register", data={"email": TOO_LONG, "password": PASSWORD})
    assert r.status_code == 422 and "email" in r.text  # a server error on PostgreSQL, stored on SQLite
    r = await client.post("/login", data={"email": TOO_LONG, "password": PASSWORD})
    assert r.status_code == 401
    r = await client.post("/api/v1/auth/register", json={"email": TOO_LONG, "password": PASSWORD})
    assert r.status_code == 422 and r.json()["field"] == "email"
    r = await client.post("/api/v1/auth/login", json={"email": "b" * 300 + "@x.org", "password": PASSWORD})
    assert r.status_code == 401
