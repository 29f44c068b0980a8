"""Custody over the real database: sealing, wrong KEK, swapped blobs, the signer's audit trail."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from sealbot.custody.errors import CredentialNotFound, KekUnavailable, SealedCredentialError, SigningRefused
from sealbot.custody.kek_file import FileKek, load_file_kek
from sealbot.custody.keyring import Keyring
from sealbot.custody.secrets import ApiCredentials
from sealbot.custody.service import Custody
from sealbot.custody.signer import LocalSigner, SignRequest
from sealbot.custody.store_adapters import StoreAuditSink, StoreCredentialSource
from sealbot.store.models import AuditRecord, Credential
from sealbot.store.uow import UnitOfWork

from .conftest import Db, add_user_with_accounts
from .test_custody_signer import BINANCE_API_KEY, BINANCE_QUERY, BINANCE_SECRET, BINANCE_SIGNATURE


def _snapshot(db: Db) -> list[tuple[object, ...]]:
    with UnitOfWork(db.factory) as uow:
        return [tuple(r) for r in uow.session.execute(sa.select(Credential.__table__).order_by(Credential.id))]


def test_sealed_credentials_open_only_with_their_kek(db: Db, file_keyring: Keyring, tmp_path: Path) -> None:
    owner, (account,) = add_user_with_accounts(db, "a@example.com", 1)
    custody = Custody(file_keyring)
    with UnitOfWork(db.factory) as uow:
        view = custody.seal_credentials(uow, owner, account, ApiCredentials(BINANCE_API_KEY, BINANCE_SECRET))
    assert (view.version, view.api_key_hint, view.algorithm) == (1, "Eh8A", "hmac-sha256")
    with UnitOfWork(db.factory) as uow:
        assert custody.check_opens(uow, owner, account)
    before = _snapshot(db)
    # without the KEK file nothing can even start
    with pytest.raises(KekUnavailable, match="does not exist"):
        load_file_kek(tmp_path / "missing.key")
    # with a wrong KEK: a clear error, and nothing changes
    wrong = Custody(Keyring(FileKek(b"w" * 32)))
    with UnitOfWork(db.factory) as uow, pytest.raises(SealedCredentialError) as caught:
        wrong.check_opens(uow, owner, account)
    assert "not the configured KEK" in str(caught.value) and file_keyring.kek.kek_id in str(caught.value)
    assert _snapshot(db) == before


def test_a_new_credential_replaces_the_old_one(db: Db, file_keyring: Keyring) -> None:
    owner, (account,) = add_user_with_accounts(db, "r@example.com", 1)
    custody = Custody(file_keyring)
    with UnitOfWork(db.factory) as uow:
        custody.seal_credentials(uow, owner, account, ApiCredentials(BINANCE_API_KEY, BINANCE_SECRET))
    with UnitOfWork(db.factory) as uow:
        view = custody.seal_credentials(uow, owner, account, ApiCredentials("second-key-abcdefgh", "second-secret"))
    assert view.version == 2 and view.api_key_hint == "efgh"
    with UnitOfWork(db.factory) as uow:
        rows = uow.credentials.list_for_account(owner, account)
        assert [(r.version, r.destroyed_at is None, len(r.ciphertext) > 0) for r in rows] == [
            (1, False, False), (2, True, True)]
        assert rows[0].destroyed_at is not None and rows[0].ciphertext == b""
        assert rows[1].destroyed_at is None and custody.check_opens(uow, owner, account)


def test_swapping_two_accounts_blobs_makes_both_fail(db: Db, file_keyring: Keyring) -> None:
    owner_a, (acc_a,) = add_user_with_accounts(db, "a@example.com", 1)
    owner_b, (acc_b,) = add_user_with_accounts(db, "b@example.com", 1)
    custody = Custody(file_keyring)
    with UnitOfWork(db.factory) as uow:
        custody.seal_credentials(uow, owner_a, acc_a, ApiCredentials("key-of-alice-000001", "secret-of-alice"))
        custody.seal_credentials(uow, owner_b, acc_b, ApiCredentials("key-of-bob-00000002", "secret-of-bob"))
    with UnitOfWork(db.factory) as uow:
        a, b = uow.credentials.current(owner_a, acc_a), uow.credentials.current(owner_b, acc_b)
        fields = ("wrapped_key", "nonce", "ciphertext")
        va, vb = ({f: getattr(a, f) for f in fields}, {f: getattr(b, f) for f in fields})
        for f in fields:
            setattr(a, f, vb[f])
            setattr(b, f, va[f])
    for owner, account in ((owner_a, acc_a), (owner_b, acc_b)):
        with UnitOfWork(db.factory) as uow, pytest.raises(SealedCredentialError):
            custody.check_opens(uow, owner, account)


def test_signer_over_the_store_audits_access_and_refusals(db: Db, file_keyring: Keyring) -> None:
    owner, (account,) = add_user_with_accounts(db, "s@example.com", 1, allowed=["LTC/BTC"])
    with UnitOfWork(db.factory) as uow:
        Custody(file_keyring).seal_credentials(uow, owner, account, ApiCredentials(BINANCE_API_KEY, BINANCE_SECRET))
    signer = LocalSigner(file_keyring, StoreCredentialSource(db.factory), StoreAuditSink(db.factory))
    handle = signer.handle_for(owner, account, "dca bot 1: place base order")
    order = SignRequest("binance", "POST", "api/v3/order", {"symbol": "LTCBTC"})
    assert signer.sign(handle, BINANCE_QUERY, order, "hex") == BINANCE_SIGNATURE
    with pytest.raises(SigningRefused):
        signer.sign(handle, b"coin=BTC&address=bc1q&amount=1", SignRequest(
            "binance", "POST", "sapi/v1/capital/withdraw/apply", {}), "hex")
    with pytest.raises(SigningRefused):
        signer.sign(handle, b"symbol=PUMPBTC&side=BUY&timestamp=1", order, "hex")
    with pytest.raises(CredentialNotFound):
        signer.handle_for(owner + 1000, account, "someone else's account")
    with UnitOfWork(db.factory) as uow:
        records = list(uow.session.execute(
            sa.select(AuditRecord.action, AuditRecord.subject, AuditRecord.details).order_by(AuditRecord.seq)))
    actions = [(r.action, r.subject) for r in records]
    assert ("credential.accessed", f"account:{account}") in actions
    refusals = [r for r in records if r.action == "signer.refused"]
    assert len(refusals) == 2
    assert '"rule":"withdrawal"' in refusals[0].details and '"rule":"allow-list"' in refusals[1].details
    assert "dca bot 1: place base order" in next(r.details for r in records if r.action == "credential.accessed")


def test_status_reports_keks_and_orphaned_token_objects(db: Db, pkcs11_keyring: Keyring,
                                                         file_keyring: Keyring) -> None:
    assert pkcs11_keyring.token is not None
    owner, (a, b) = add_user_with_accounts(db, "st@example.com", 2)
    with UnitOfWork(db.factory) as uow:
        Custody(file_keyring).seal_credentials(uow, owner, a, ApiCredentials("key-file-00000001", "s1"))
        view = Custody(pkcs11_keyring).seal_credentials(uow, owner, b, ApiCredentials("key-hsm-000000002", "s2"))
        live_label = uow.credentials.current(owner, b).hsm_label
    assert view.in_token and live_label is not None
    orphan = pkcs11_keyring.token.import_hmac_secret(b"o" * 32, "sb-hmac-orphan")
    with UnitOfWork(db.factory) as uow:
        status = Custody(pkcs11_keyring).status(uow)
    assert status.credentials_by_kek == {file_keyring.kek.kek_id: 1, pkcs11_keyring.kek.kek_id: 1}
    assert status.not_on_current_kek == 1
    assert status.kek_attributes == {"extractable": False, "sensitive": True, "never_extractable": True}
    assert orphan in status.orphaned_token_objects and live_label not in status.orphaned_token_objects
    assert any("not the configured KEK" in line for line in status.lines())
    pkcs11_keyring.token.destroy(orphan)


@pytest.mark.parametrize("provider", ["file", "pkcs11"])
def test_generated_ed25519_key_with_attached_api_key_signs(db: Db, provider: str,
                                                           request: pytest.FixtureRequest) -> None:
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    keyring: Keyring = request.getfixturevalue(f"{provider}_keyring")
    owner, (account,) = add_user_with_accounts(db, f"ed-{provider}@example.com", 1, allowed=["BTC/USDT"])
    custody = Custody(keyring)
    with UnitOfWork(db.factory) as uow:
        pem = custody.generate_ed25519(uow, owner, account)
    with UnitOfWork(db.factory) as uow:
        view = custody.attach_api_key(uow, owner, account, "binance-ed25519-api-key-0042")
    assert (view.version, view.api_key_hint, view.algorithm, view.in_token) == (2, "0042", "ed25519",
                                                                                 provider == "pkcs11")
    signer = LocalSigner(keyring, StoreCredentialSource(db.factory), StoreAuditSink(db.factory))
    handle = signer.handle_for(owner, account, "ed25519 test")
    assert signer.api_key(handle) == "binance-ed25519-api-key-0042"
    payload = b"symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&timestamp=1"
    signature = signer.sign(handle, payload, SignRequest("binance", "POST", "api/v3/order", {}), "base64")
    public = load_pem_public_key(pem.encode())
    assert isinstance(public, Ed25519PublicKey)
    public.verify(base64.b64decode(signature), payload)
