"""A second-factor code is good once (RFC 6238 section 5.2), on SQLite and PostgreSQL:
the same code twice, an earlier step's code after a later one, the code that turned 2FA
on, and two concurrent requests with one code (only one passes) are refused, across a
restart too; the next step's code is accepted. Wrong codes are limited by one mechanism,
the login lockout in the database, on every path that takes a code (login, turning 2FA
off, new recovery codes), and it outlives the process.

The signer's clock is ``totp_clock`` (tests/conftest.py), moved 30 s at a time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyotp
import pytest
import sqlalchemy as sa

from sealbot.config import Settings, load_settings
from sealbot.custody.secrets import Secret
from sealbot.custody.totp import TotpSigner
from sealbot.domain.errors import InvalidConfig
from sealbot.domain.evolve import evolve
from sealbot.services import auth
from sealbot.services.instance import init_instance
from sealbot.services.platform import Platform, open_platform

if TYPE_CHECKING:
    from conftest import TotpClock  # tests/conftest.py: the signer's two-factor clock

PASSWORD = "correct horse battery"
EMAIL = "replay@example.org"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    settings = load_settings(data_dir=tmp_path / "data", config_dir=tmp_path / "config", database_url=database_url)
    init_instance(settings)
    return settings


@pytest.fixture
def platform(settings: Settings) -> Platform:
    return open_platform(settings)


def enrol(platform: Platform, clock: TotpClock, email: str = EMAIL) -> tuple[str, str, list[str]]:
    """Register, turn 2FA on; (the secret, the code that confirmed it, the recovery codes)."""
    auth.register(platform, email, PASSWORD)
    session = auth.login(platform, email, PASSWORD)
    setup = auth.begin_totp(platform, session.principal)
    confirmed_with = clock.code(setup.secret)
    recovery = auth.confirm_totp(platform, session.principal, confirmed_with)
    return setup.secret, confirmed_with, recovery


def last_step(platform: Platform, email: str = EMAIL) -> int | None:
    with platform.uow() as uow:
        return uow.users.by_email(email).totp_last_step


def actions(platform: Platform, action: str) -> int:
    with platform.session_factory() as s:
        return int(s.scalar(sa.text("select count(*) from audit_log where action = :a"), {"a": action}) or 0)


def test_a_code_logs_in_once_and_the_next_steps_code_is_accepted(settings: Settings, platform: Platform,
                                                                 totp_clock: TotpClock) -> None:
    secret, confirmed_with, _ = enrol(platform, totp_clock)
    step = int(totp_clock()) // 30
    assert last_step(platform) == step
    with pytest.raises(auth.TotpRequired):  # the code that turned 2FA on is spent
        auth.login(platform, EMAIL, PASSWORD, totp_code=confirmed_with)

    totp_clock.tick()
    code = totp_clock.code(secret)
    assert auth.login(platform, EMAIL, PASSWORD, totp_code=code).principal.mfa
    assert last_step(platform) == step + 1
    with pytest.raises(auth.TotpRequired):  # the same code again, still inside its step
        auth.login(platform, EMAIL, PASSWORD, totp_code=code)
    restarted = open_platform(settings)  # another process, or this one restarted: the step is in the database
    with pytest.raises(auth.TotpRequired):
        auth.login(restarted, EMAIL, PASSWORD, totp_code=code)
    assert actions(platform, "auth.totp_replayed") == 3
    with platform.session_factory() as s:  # a replay is a failed login like a wrong code
        whys = [str(d) for d in s.scalars(sa.text("select details from audit_log where action = 'auth.login_failed'"))]
    assert len(whys) == 3 and all("totp" in w for w in whys)

    totp_clock.tick()
    assert auth.login(restarted, EMAIL, PASSWORD, totp_code=totp_clock.code(secret)).principal.mfa
    assert last_step(platform) == step + 2


def test_an_earlier_steps_code_is_refused_once_a_later_one_was_accepted(platform: Platform,
                                                                        totp_clock: TotpClock) -> None:
    secret, _, _ = enrol(platform, totp_clock)
    totp_clock.tick(2)
    now = int(totp_clock())
    earlier = pyotp.TOTP(secret).at(now - 30)  # inside the signer's drift window
    later = pyotp.TOTP(secret).at(now + 30)
    assert auth.login(platform, EMAIL, PASSWORD, totp_code=later).principal.mfa  # a phone running fast
    assert last_step(platform) == now // 30 + 1
    for code in (earlier, totp_clock.code(secret)):
        with pytest.raises(auth.TotpRequired):
            auth.login(platform, EMAIL, PASSWORD, totp_code=code)


class BarrierSigner:
    """The platform's signer, holding every matched code until ``parties`` requests have
    one: all of them then race for the compare-and-set together."""

    def __init__(self, inner: TotpSigner, parties: int) -> None:
        self.inner, self.barrier = inner, threading.Barrier(parties, timeout=20)

    def seal_totp_secret(self, owner_id: int, secret: Secret) -> bytes:
        return self.inner.seal_totp_secret(owner_id, secret)

    def match_totp(self, owner_id: int, sealed: bytes, code: str) -> int | None:
        step = self.inner.match_totp(owner_id, sealed, code)
        self.barrier.wait()
        return step


def race(calls: list[tuple[str, object]], target: object) -> list[object]:
    """Run ``target(arg)`` for each arg in its own thread; each one's result or exception."""
    results: list[object] = [None] * len(calls)

    def run(i: int, arg: object) -> None:
        try:
            results[i] = target(arg)  # type: ignore[operator]
        except Exception as exc:  # the outcome, whatever it is, is what the test compares
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, arg)) for i, (_, arg) in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return results


def test_two_concurrent_logins_with_one_code_only_one_passes(platform: Platform, totp_clock: TotpClock) -> None:
    secret, _, _ = enrol(platform, totp_clock)
    totp_clock.tick()
    code = totp_clock.code(secret)
    signer = platform.signer
    assert isinstance(signer, TotpSigner)
    racing = evolve(platform, signer=BarrierSigner(signer, 2))  # type: ignore[arg-type]
    results = race([("a", code), ("b", code)],
                   lambda c: auth.login(racing, EMAIL, PASSWORD, totp_code=str(c)))
    passed = [r for r in results if isinstance(r, auth.IssuedSession)]
    refused = [r for r in results if isinstance(r, auth.TotpRequired)]
    assert len(passed) == 1 and len(refused) == 1, results
    with platform.session_factory() as s:
        assert s.scalar(sa.text("select count(*) from sessions where mfa_verified")) == 2  # confirm + one login
    assert actions(platform, "auth.totp_replayed") == 1


def test_the_compare_and_set_holds_against_an_open_transaction(platform: Platform, totp_clock: TotpClock) -> None:
    """The step is taken by one UPDATE: a second transaction offering the same step waits
    for the first (row lock / SQLite's one writer) and then changes nothing."""
    enrol(platform, totp_clock)
    step = int(totp_clock()) // 30 + 1
    first = platform.uow()
    first.__enter__()
    try:
        assert first.users.advance_totp_step(first.users.by_email(EMAIL).id, step)
        user_id = first.users.by_email(EMAIL).id
        outcome: list[bool] = []

        def second() -> None:
            with platform.uow() as uow:
                outcome.append(uow.users.advance_totp_step(user_id, step))

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive() and not outcome  # waiting for the first transaction
        first.commit()
    finally:
        first.__exit__(None, None, None)
    thread.join(timeout=20)
    assert outcome == [False]
    assert last_step(platform) == step


def test_a_recovery_code_used_by_two_concurrent_logins_lets_only_one_in(platform: Platform,
                                                                       totp_clock: TotpClock) -> None:
    _, _, recovery = enrol(platform, totp_clock)
    barrier = threading.Barrier(2, timeout=20)

    def login(code: object) -> auth.IssuedSession:
        barrier.wait()
        return auth.login(platform, EMAIL, PASSWORD, totp_code=str(code))

    results = race([("a", recovery[0]), ("b", recovery[0])], login)
    assert sum(isinstance(r, auth.IssuedSession) for r in results) == 1, results
    assert sum(isinstance(r, auth.TotpRequired) for r in results) == 1, results
    with pytest.raises(auth.TotpRequired):
        auth.login(platform, EMAIL, PASSWORD, totp_code=recovery[0])


def test_new_recovery_codes_and_turning_2fa_off_take_a_fresh_code(platform: Platform,
                                                                  totp_clock: TotpClock) -> None:
    secret, _, _ = enrol(platform, totp_clock)
    totp_clock.tick()
    code = totp_clock.code(secret)
    session = auth.login(platform, EMAIL, PASSWORD, totp_code=code)
    with pytest.raises(InvalidConfig, match="each code works once"):
        auth.regenerate_recovery_codes(platform, session.principal, code)
    totp_clock.tick()
    code = totp_clock.code(secret)
    assert len(auth.regenerate_recovery_codes(platform, session.principal, code)) == auth.RECOVERY_CODES
    with pytest.raises(InvalidConfig):
        auth.disable_totp(platform, session.principal, code)
    totp_clock.tick()
    auth.disable_totp(platform, session.principal, totp_clock.code(secret))
    with platform.uow() as uow:
        user = uow.users.by_email(EMAIL)
        assert user.totp_secret_sealed is None
        assert user.totp_last_step == int(totp_clock()) // 30  # kept: never lowered, even for a new secret


@pytest.mark.parametrize("path", ["regenerate", "disable"])
def test_wrong_codes_on_any_path_lock_the_account_everywhere_and_it_outlives_the_process(
        settings: Settings, platform: Platform, totp_clock: TotpClock, path: str) -> None:
    secret, _, _ = enrol(platform, totp_clock)
    totp_clock.tick()
    session = auth.login(platform, EMAIL, PASSWORD, totp_code=totp_clock.code(secret))
    wrong = "000000" if totp_clock.code(secret) != "000000" else "111111"
    act = {"regenerate": auth.regenerate_recovery_codes, "disable": auth.disable_totp}[path]
    for _ in range(auth.MAX_FAILURES):
        with pytest.raises(InvalidConfig):
            act(platform, session.principal, wrong)
    totp_clock.tick()
    right = totp_clock.code(secret)
    restarted = open_platform(settings)  # the count is in the database, not in a process
    with pytest.raises(auth.LockedOut) as locked:
        auth.regenerate_recovery_codes(restarted, session.principal, right)
    assert 0 < locked.value.retry_after <= int(auth.LOCKOUT.total_seconds()) + 1
    with pytest.raises(auth.LockedOut):
        auth.disable_totp(restarted, session.principal, right)
    with pytest.raises(auth.LockedOut):
        auth.login(restarted, EMAIL, PASSWORD, totp_code=right)
    with platform.uow() as uow:
        assert uow.users.by_email(EMAIL).totp_secret_sealed is not None  # still on
    assert actions(platform, "auth.2fa_code_failed") == auth.MAX_FAILURES
    assert actions(platform, "auth.locked") == 1 and actions(platform, "auth.2fa_locked") == 2
    later = datetime.now(UTC) + auth.LOCKOUT
    assert len(auth.regenerate_recovery_codes(restarted, session.principal, right, now=later)) == auth.RECOVERY_CODES


def test_wrong_guesses_sent_in_parallel_are_each_counted(platform: Platform, totp_clock: TotpClock) -> None:
    """The lockout's count is raised in the database, not read and written back: eight
    wrong codes at once count eight, so parallel guessing does not get past the limit."""
    secret, _, _ = enrol(platform, totp_clock)
    wrong = "000000" if totp_clock.code(secret) != "000000" else "111111"
    barrier = threading.Barrier(8, timeout=20)

    def guess(code: object) -> None:
        barrier.wait()
        auth.login(platform, EMAIL, PASSWORD, totp_code=str(code))

    results = race([(str(i), wrong) for i in range(8)], guess)
    assert all(isinstance(r, (auth.TotpRequired, auth.LockedOut)) for r in results), results
    wrong_codes = sum(isinstance(r, auth.TotpRequired) for r in results)  # a late one may find the lock already
    with platform.session_factory() as s:
        failures = s.scalar(sa.text("select failures from login_throttle where email = :e"), {"e": EMAIL})
    assert wrong_codes > auth.MAX_FAILURES and failures == wrong_codes == actions(platform, "auth.login_failed")
    totp_clock.tick()
    with pytest.raises(auth.LockedOut):
        auth.login(platform, EMAIL, PASSWORD, totp_code=totp_clock.code(secret))
