"""KEK rotation: completes, reports progress, resumes after an interruption or a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from sealbot.custody.envelope import Binding, open_bytes, seal_bytes
from sealbot.custody.errors import CustodyError
from sealbot.custody.kek_file import FileKek, create_kek_file, load_file_kek
from sealbot.custody.keyring import Keyring
from sealbot.custody.secrets import ApiCredentials
from sealbot.custody.service import Custody, rotate_kek
from sealbot.custody.store_adapters import binding_of, blob_of
from sealbot.store.models import Credential, ExchangeAccount, KekRotation
from sealbot.store.uow import UnitOfWork

from .conftest import Db, add_user_with_accounts


def _all_open(db: Db, keyring: Keyring) -> int:
    opened = 0
    with UnitOfWork(db.factory) as uow:
        for row in uow.session.scalars(sa.select(Credential).where(Credential.destroyed_at.is_(None))):
            payload = json.loads(bytes(open_bytes(blob_of(row), binding_of(row), keyring.kek)))
            assert payload["secret"] == f"secret-{row.account_id}"
            opened += 1
    return opened


def _seal_many(db: Db, owner: int, accounts: list[int], kek: FileKek) -> None:
    rows = []
    for account in accounts:
        # the payload format of custody.material, built without Secret objects: registering
        # 20,000 secrets for redaction would only slow the rest of the suite down
        payload = json.dumps({"v": 1, "alg": "hmac-sha256", "api_key": f"api-key-{account:08d}",
                              "secret": f"secret-{account}"}, separators=(",", ":")).encode()
        blob = seal_bytes(payload, Binding(owner, account, 1), kek)
        rows.append({"account_id": account, "owner_id": owner, "version": 1, "algorithm": "hmac-sha256",
                     "kek_id": blob.kek_id, "wrapped_key": blob.wrapped_key, "nonce": blob.nonce,
                     "ciphertext": blob.ciphertext, "api_key_hint": f"{account % 10000:04d}"})
    with UnitOfWork(db.factory) as uow:
        uow.session.execute(sa.insert(Credential), rows)


def test_rotation_rewraps_everything_and_resumes_after_an_interruption(db: Db, tmp_path: Path) -> None:
    old, new = Keyring(FileKek(b"o" * 32)), Keyring(FileKek(b"n" * 32))
    owner, accounts = add_user_with_accounts(db, "rot@example.com", 23)
    _seal_many(db, owner, accounts, old.kek)  # type: ignore[arg-type]
    seen: list[tuple[int, int]] = []

    def interrupt(done: int, total: int) -> None:
        seen.append((done, total))
        if done >= 10:
            raise KeyboardInterrupt  # the operator pressed Ctrl-C mid-run

    with pytest.raises(KeyboardInterrupt):
        rotate_kek(db.factory, old, new, interrupt, batch_size=5)
    with UnitOfWork(db.factory) as uow:
        assert uow.credentials.count_by_kek() == {old.kek.kek_id: 13, new.kek.kek_id: 10}
        rotation = uow.kek_rotations.unfinished()
        assert rotation is not None and rotation.done == 10
    progress: list[tuple[int, int]] = []
    report = rotate_kek(db.factory, old, new, lambda d, t: progress.append((d, t)), batch_size=5)
    assert report.rewrapped == 13 and report.total == 23 and report.resumed_from == rotation.cursor
    assert progress[0] == (10, 23) and progress[-1] == (23, 23)
    assert _all_open(db, new) == 23
    with UnitOfWork(db.factory) as uow:
        assert uow.credentials.count_by_kek() == {new.kek.kek_id: 23}
        assert uow.kek_rotations.unfinished() is None
    # running it again is a no-op, and the old KEK no longer opens anything
    assert rotate_kek(db.factory, old, new).rewrapped == 0
    with pytest.raises(CustodyError):
        _all_open(db, old)


def test_rotation_with_a_wrong_old_kek_changes_nothing(db: Db) -> None:
    real, wrong, new = Keyring(FileKek(b"r" * 32)), Keyring(FileKek(b"x" * 32)), Keyring(FileKek(b"n" * 32))
    owner, accounts = add_user_with_accounts(db, "w@example.com", 3)
    _seal_many(db, owner, accounts, real.kek)  # type: ignore[arg-type]
    with pytest.raises(CustodyError, match="no credential is wrapped by KEK"):
        rotate_kek(db.factory, wrong, new)
    with UnitOfWork(db.factory) as uow:
        assert uow.credentials.count_by_kek() == {real.kek.kek_id: 3}
        assert uow.kek_rotations.list() == []
    with pytest.raises(CustodyError, match="is the old one"):
        rotate_kek(db.factory, real, real)


def test_rotation_onto_the_token_kek(db: Db, pkcs11_keyring: Keyring, file_keyring: Keyring) -> None:
    owner, (account,) = add_user_with_accounts(db, "hsm@example.com", 1)
    custody = Custody(file_keyring)
    with UnitOfWork(db.factory) as uow:
        custody.seal_credentials(uow, owner, account, ApiCredentials("api-key-00000001", f"secret-{account}"))
    assert rotate_kek(db.factory, file_keyring, pkcs11_keyring).rewrapped == 1
    assert _all_open(db, pkcs11_keyring) == 1


_CHILD = r"""
import sys, time
from pathlib import Path
from sealbot.custody.kek_file import load_file_kek
from sealbot.custody.service import rotate_kek
from sealbot.store.db import make_session_factory
from sealbot.custody.store_adapters import StoreRotationStore

url, old, new, stop_at = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
original = StoreRotationStore._apply
calls = 0

def apply_then_maybe_hang(uow, from_kek, updates):
    global calls
    original(uow, from_kek, updates)
    calls += 1
    if calls == stop_at:  # batch written but not committed: the parent kills us here
        print("KILL-ME", flush=True)
        time.sleep(120)

StoreRotationStore._apply = staticmethod(apply_then_maybe_hang)
rotate_kek(make_session_factory(url), load_file_kek(old), load_file_kek(new),
           lambda done, total: print(f"{done}/{total}", flush=True), batch_size=500)
print("FINISHED", flush=True)
"""


@pytest.mark.slow
def test_rotation_of_10000_credentials_survives_sigkill(sqlite_url: str, tmp_path: Path) -> None:
    from sealbot.store.db import make_session_factory
    from sealbot.store.migrate import upgrade

    upgrade(sqlite_url)
    db = Db(sqlite_url, make_session_factory(sqlite_url))
    old_path, new_path = create_kek_file(tmp_path / "old.key"), create_kek_file(tmp_path / "new.key")
    old, new = Keyring(load_file_kek(old_path)), Keyring(load_file_kek(new_path))
    owner, _ = add_user_with_accounts(db, "bulk@example.com", 0)
    with UnitOfWork(db.factory) as uow:
        uow.session.execute(sa.insert(ExchangeAccount),
                            [{"owner_id": owner, "exchange": "binance", "label": f"a{i}", "status": "active",
                              "is_paper": False, "partition": 0} for i in range(10_000)])
        accounts = list(uow.session.scalars(sa.select(ExchangeAccount.id).order_by(ExchangeAccount.id)))
    _seal_many(db, owner, accounts, old.kek)  # type: ignore[arg-type]

    # kill the rotation inside the transaction of its 11th batch (5,000 rows committed, 500 in flight)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, sqlite_url, str(old_path), str(new_path), "11"],
                             stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = child.stdout.readline().strip()
        lines.append(line)
        if line in ("KILL-ME", "FINISHED", ""):
            break
    assert lines[-1] == "KILL-ME", lines[-5:]
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    assert "5000/10000" in lines and "5500/10000" not in lines

    with UnitOfWork(db.factory) as uow:
        assert uow.credentials.count_by_kek() == {old.kek.kek_id: 5000, new.kek.kek_id: 5000}
        rotation = uow.session.scalar(sa.select(KekRotation))
        assert rotation is not None and rotation.finished_at is None and rotation.done == 5000
        assert rotation.cursor == accounts[4999]  # one credential per account, ids in the same order

    progress: list[tuple[int, int]] = []
    report = rotate_kek(db.factory, old, new, lambda d, t: progress.append((d, t)))
    assert (report.rewrapped, report.total, report.resumed_from) == (5000, 10_000, accounts[4999])
    assert progress[0] == (5000, 10_000) and progress[-1] == (10_000, 10_000)
    assert _all_open(db, new) == 10_000
