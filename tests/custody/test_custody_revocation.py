"""Revocation and panic: bots stopped, cancels attempted (and failures reported), keys
destroyed so nothing opens, accounts marked, exactly one audit record per account."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from sealbot import audit
from sealbot.custody.errors import CredentialNotFound, CustodyError, SealedCredentialError
from sealbot.custody.kek_file import load_file_kek
from sealbot.custody.keyring import Keyring
from sealbot.custody.sealing import open_material
from sealbot.custody.secrets import ApiCredentials
from sealbot.custody.service import Custody
from sealbot.custody.signer import LocalSigner, SignRequest
from sealbot.custody.store_adapters import StoreAuditSink, StoreCredentialSource, binding_of, blob_of
from sealbot.domain.errors import NotFound
from sealbot.services.revocation import AccountRef, panic, revoke_account, revoke_user
from sealbot.store.models import AuditRecord, Bot, Credential, ExchangeAccount
from sealbot.store.uow import UnitOfWork

from .conftest import Db, add_user_with_accounts

ORDER = SignRequest("binance", "POST", "api/v3/order", {})
SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def _instance(db: Db, keyring: Keyring, custody: Custody) -> dict[int, int]:
    """Two users, four accounts with keys, running bots. Returns {account: owner}."""
    owners: dict[int, int] = {}
    for n, count in ((0, 3), (1, 1)):
        owner, accounts = add_user_with_accounts(db, f"p{n}@example.com", count)
        for account in accounts:
            owners[account] = owner
            with UnitOfWork(db.factory) as uow:
                custody.seal_credentials(uow, owner, account, ApiCredentials(f"key-{account:012d}", f"sec-{account}"))
                for b in range(2):
                    bot = uow.bots.add(owner, "dca", f"bot {b}", {}, account_id=account)
                    bot.status = "running"
    return owners


def _cancel_with_faults(slow_account: int, down_account: int) -> tuple[list[int], object]:
    calls: list[int] = []

    async def cancel(ref: AccountRef) -> int:
        calls.append(ref.account_id)
        if ref.account_id == slow_account:
            await asyncio.sleep(60)  # an exchange that never answers
        if ref.account_id == down_account:
            raise ConnectionError("binance unreachable: https://api.binance.com/api/v3/openOrders?signature=" +
                                  SIGNATURE)
        return 2
    return calls, cancel


async def test_panic_leaves_nothing_openable_and_one_audit_record_per_account(db: Db, file_keyring: Keyring) -> None:
    signer = LocalSigner(file_keyring, StoreCredentialSource(db.factory), StoreAuditSink(db.factory))
    custody = Custody(file_keyring, signer)
    owners = _instance(db, file_keyring, custody)
    accounts = sorted(owners)
    handle = signer.handle_for(owners[accounts[0]], accounts[0], "running bot")
    with UnitOfWork(db.factory) as uow:
        before = list(uow.session.scalars(sa.select(Credential)))
    calls, cancel = _cancel_with_faults(slow_account=accounts[1], down_account=accounts[2])

    report = await panic(db.factory, custody, cancel_open_orders=cancel, cancel_timeout=0.3)  # type: ignore[arg-type]

    assert sorted(calls) == accounts
    assert [a.account_id for a in report.accounts] == accounts
    status = {a.account_id: a.cancel for a in report.accounts}
    assert status == {accounts[0]: "ok", accounts[1]: "timeout", accounts[2]: "failed", accounts[3]: "ok"}
    assert {a.account_id for a in report.failed_cancels} == {accounts[1], accounts[2]}
    failed = next(a for a in report.accounts if a.cancel == "failed")
    assert "ConnectionError" in failed.cancel_detail and SIGNATURE not in failed.cancel_detail  # redacted
    assert all(len(a.bots_stopped) == 2 and a.credentials_destroyed == 1 for a in report.accounts)
    assert any("could not be cancelled" in line for line in report.lines())

    with UnitOfWork(db.factory) as uow:
        for account, owner in owners.items():
            with pytest.raises(CredentialNotFound):
                custody.check_opens(uow, owner, account)
        rows = list(uow.session.scalars(sa.select(Credential)))
        assert all(r.destroyed_at is not None and r.ciphertext == b"" and r.wrapped_key == b"" for r in rows)
        assert {a.status for a in uow.session.scalars(sa.select(ExchangeAccount))} == {"revoked"}
        assert {b.status for b in uow.session.scalars(sa.select(Bot))} == {"stopped"}
        revoked = list(uow.session.execute(
            sa.select(AuditRecord.subject).where(AuditRecord.action == "account.revoked")))
        assert sorted(r.subject for r in revoked) == sorted(f"account:{a}" for a in accounts)
        assert audit.verify(uow.session).ok
    # even the blobs copied before the panic say nothing without a live row, and the signer forgot
    for row in before:
        assert open_material(blob_of(row), binding_of(row), file_keyring)  # a backup still opens with the KEK ...
    with pytest.raises(CustodyError):
        signer.sign(handle, b"symbol=BTCUSDT", ORDER, "hex")  # ... but the running instance can no longer sign
    with pytest.raises(CredentialNotFound):
        signer.handle_for(owners[accounts[0]], accounts[0], "after panic")


async def test_revoke_account_and_user_are_scoped(db: Db, file_keyring: Keyring) -> None:
    custody = Custody(file_keyring)
    owners = _instance(db, file_keyring, custody)
    a0, a1, a2, a3 = sorted(owners)
    with pytest.raises(NotFound):
        await revoke_account(db.factory, custody, owners[a3], a0)  # not this user's account
    one = await revoke_account(db.factory, custody, owners[a0], a0, reason="leak suspected")
    assert [a.account_id for a in one.accounts] == [a0] and one.accounts[0].cancel == "skipped"
    with UnitOfWork(db.factory) as uow:
        assert custody.check_opens(uow, owners[a1], a1) and custody.check_opens(uow, owners[a3], a3)
    user = await revoke_user(db.factory, custody, owners[a1])
    assert sorted(a.account_id for a in user.accounts) == [a1, a2]  # a0 was already revoked
    with UnitOfWork(db.factory) as uow:
        assert custody.check_opens(uow, owners[a3], a3)  # the other user is untouched
        records = list(uow.session.execute(sa.select(AuditRecord.subject, AuditRecord.actor)
                                           .where(AuditRecord.action == "account.revoked")))
    assert sorted(r.subject for r in records) == sorted(f"account:{a}" for a in (a0, a1, a2))
    assert {r.actor for r in records} == {f"user:{owners[a0]}"}


@pytest.mark.softhsm
async def test_panic_destroys_token_held_secrets(db: Db, pkcs11_keyring: Keyring) -> None:
    assert pkcs11_keyring.token is not None
    custody = Custody(pkcs11_keyring)
    owner, (account,) = add_user_with_accounts(db, "hsm-panic@example.com", 1)
    with UnitOfWork(db.factory) as uow:
        custody.seal_credentials(uow, owner, account, ApiCredentials("key-hsm-000000001", "s" * 64))
        label = uow.credentials.current(owner, account).hsm_label
    assert label is not None and pkcs11_keyring.token.has(label)
    await panic(db.factory, custody)
    assert not pkcs11_keyring.token.has(label)
    with UnitOfWork(db.factory) as uow, pytest.raises(CredentialNotFound):
        custody.check_opens(uow, owner, account)
    # the destroyed row's emptied blob cannot open either
    with pytest.raises(SealedCredentialError), UnitOfWork(db.factory) as uow:
        row = uow.session.scalars(sa.select(Credential)).one()
        open_material(blob_of(row), binding_of(row), pkcs11_keyring)


@pytest.mark.softhsm
async def test_revocation_without_kek_access_then_orphans_purged_where_the_token_is(
        db: Db, pkcs11_keyring: Keyring) -> None:
    assert pkcs11_keyring.token is not None
    owner, (account,) = add_user_with_accounts(db, "web@example.com", 1)
    with UnitOfWork(db.factory) as uow:
        Custody(pkcs11_keyring).seal_credentials(uow, owner, account, ApiCredentials("key-web-000000001", "w" * 40))
        label = uow.credentials.current(owner, account).hsm_label
    web = Custody(None)  # the web process in socket-signer mode: no KEK, no token
    with UnitOfWork(db.factory) as uow, pytest.raises(CustodyError, match="no KEK"):
        web.seal_credentials(uow, owner, account, ApiCredentials("k" * 20, "s" * 20))
    report = await revoke_account(db.factory, web, owner, account)
    assert report.accounts[0].credentials_destroyed == 1
    assert pkcs11_keyring.token.has(label)  # unusable (no row names it) until purged
    with UnitOfWork(db.factory) as uow:
        assert label in Custody(pkcs11_keyring).purge_orphans(uow)
    assert not pkcs11_keyring.token.has(label)


class FakeVenue:
    """Open orders on an exchange; one of them refuses to be cancelled."""

    def __init__(self, orders: list[object], stuck: object | None) -> None:
        self.orders, self.stuck, self.cancelled = orders, stuck, []  # type: list[object]

    async def __aenter__(self) -> FakeVenue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def fetch_open_orders(self) -> list[object]:
        return list(self.orders)

    async def cancel_order(self, client_id: object, pair: object) -> None:
        if client_id == self.stuck:
            raise TimeoutError("exchange busy")
        self.cancelled.append(client_id)


async def test_venue_canceller_cancels_every_open_order_and_reports_failures(db: Db, file_keyring: Keyring) -> None:
    from types import SimpleNamespace

    from sealbot.domain import ClientOrderId, Pair
    from sealbot.services.revocation import venue_canceller
    from sealbot.venues.base import ForeignClientId

    signer = LocalSigner(file_keyring, StoreCredentialSource(db.factory), StoreAuditSink(db.factory))
    custody = Custody(file_keyring, signer)
    owners = _instance(db, file_keyring, custody)
    a0, a1, *_ = sorted(owners)
    ours, foreign = ClientOrderId("B1", 1, "base"), ForeignClientId.of("attacker-1")
    pair = Pair("BTC", "USDT")
    venues = {a0: FakeVenue([SimpleNamespace(client_id=ours, pair=pair),
                             SimpleNamespace(client_id=foreign, pair=pair)], stuck=None),
              a1: FakeVenue([SimpleNamespace(client_id=ours, pair=pair)], stuck=ours)}
    handles: list[object] = []

    def make_venue(ref: AccountRef, handle: object) -> FakeVenue:
        handles.append(handle)
        return venues.get(ref.account_id, FakeVenue([], None))

    report = await revoke_user(db.factory, custody, owners[a0],
                               cancel_open_orders=venue_canceller(signer, make_venue))  # type: ignore[arg-type]
    by_account = {a.account_id: a for a in report.accounts}
    assert venues[a0].cancelled == [ours, foreign]  # the attacker's order too
    assert (by_account[a0].cancel, by_account[a0].cancel_detail) == ("ok", "2 cancelled")
    assert by_account[a1].cancel == "failed" and "1 of 1 open orders" in by_account[a1].cancel_detail
    assert len(handles) == 3 and all(a.credentials_destroyed == 1 for a in report.accounts)


def test_run_panic_destroys_keys_even_when_the_kek_is_refused(db: Db, kek_path: Path, tmp_path: Path) -> None:
    import os

    from sealbot.config import Settings
    from sealbot.services.revocation import run_panic

    keyring = Keyring(load_file_kek(kek_path))
    owners = _instance(db, keyring, Custody(keyring))
    os.chmod(kek_path, 0o644)  # the instance would refuse to start; a panic must still work
    settings = Settings(data_dir=tmp_path / "data", config_dir=tmp_path / "cfg", database_url=db.url,
                        kek_file=kek_path)
    report = run_panic(settings, reason="drill")
    assert sorted(a.account_id for a in report.accounts) == sorted(owners)
    assert {a.cancel for a in report.accounts} == {"skipped"}
    with UnitOfWork(db.factory) as uow:
        assert uow.credentials.count_by_kek() == {}
        assert {a.status for a in uow.session.scalars(sa.select(ExchangeAccount))} == {"revoked"}
