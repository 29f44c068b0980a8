"""Custody fixtures: a SoftHSM2 token of our own, KEKs, and in-memory ports for the signer.

SoftHSM2 reads its configuration once, when the PKCS#11 library is first loaded in
the process, so the token is session-scoped: every pkcs11 test shares one token in
a temporary directory and tells its objects apart by label.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sealbot.custody.errors import CredentialNotFound
from sealbot.custody.hsm import Pkcs11Token
from sealbot.custody.kek_file import create_kek_file, load_file_kek
from sealbot.custody.keyring import Keyring
from sealbot.custody.signer import StoredCredential
from sealbot.store.db import make_engine, make_session_factory
from sealbot.store.migrate import upgrade
from sealbot.store.uow import UnitOfWork

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
TOKEN_LABEL = "sealbot-test"
TOKEN_PIN = "4321"


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pkcs11Token]:
    """A freshly initialised SoftHSM2 token, logged in."""
    if not SOFTHSM_MODULE.exists() or shutil.which("softhsm2-util") is None:
        pytest.skip("SoftHSM2 is not installed (apt-get install -y softhsm2)")
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN_LABEL,
                    "--pin", TOKEN_PIN, "--so-pin", "87654321"], check=True, capture_output=True)
    token = Pkcs11Token(SOFTHSM_MODULE, TOKEN_LABEL, TOKEN_PIN)
    yield token
    token.close()


@pytest.fixture
def kek_path(tmp_path: Path) -> Path:
    return create_kek_file(tmp_path / "config" / "kek.key")


@pytest.fixture
def file_keyring(kek_path: Path) -> Keyring:
    return Keyring(load_file_kek(kek_path))


@pytest.fixture
def pkcs11_keyring(softhsm_token: Pkcs11Token) -> Keyring:
    return Keyring(softhsm_token.kek("kek-test", create=True), softhsm_token)


@dataclass
class MemoryAudit:
    records: list[tuple[str, str, str, dict[str, object]]] = field(default_factory=list)

    def record(self, actor: str, action: str, subject: str, details: Mapping[str, object]) -> None:
        self.records.append((actor, action, subject, dict(details)))

    def actions(self) -> list[str]:
        return [r[1] for r in self.records]


@dataclass
class MemorySource:
    rows: dict[tuple[int, int], StoredCredential] = field(default_factory=dict)

    def add(self, credential: StoredCredential) -> None:
        self.rows[(credential.owner_id, credential.account_id)] = credential

    def load(self, owner_id: int, account_id: int) -> StoredCredential:
        try:
            return self.rows[(owner_id, account_id)]
        except KeyError:
            raise CredentialNotFound(owner_id, account_id) from None


@dataclass(frozen=True)
class Db:
    url: str
    factory: sessionmaker[Session]


@pytest.fixture
def database_url(migrated_database_url: str) -> str:
    """These tests do not test the migrations: their database starts at the newest schema
    (tests/conftest.py), which saves about a second per PostgreSQL test."""
    return migrated_database_url


@pytest.fixture
def db(database_url: str) -> Iterator[Db]:
    """A migrated database (SQLite, and PostgreSQL when configured)."""
    upgrade(database_url)
    engine = make_engine(database_url)
    yield Db(database_url, make_session_factory(engine))
    engine.dispose()


def add_user_with_accounts(db: Db, email: str, accounts: int, *, allowed: list[str] | None = None,
                           exchange: str = "binance") -> tuple[int, list[int]]:
    with UnitOfWork(db.factory) as uow:
        user = uow.users.add(email, "argon2-hash-placeholder")
        ids = [uow.accounts.add(user.id, exchange, f"acct {i}", allowed_pairs=allowed).id for i in range(accounts)]
        return user.id, ids
