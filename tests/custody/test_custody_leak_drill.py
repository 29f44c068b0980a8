"""The leak drill: seal several users' keys, then search every byte of the database and
every log line for them, in raw, hex and base64 form. Nothing may be found."""

from __future__ import annotations

import base64
import io
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sealbot.custody.errors import SealedCredentialError
from sealbot.custody.kek_file import FileKek
from sealbot.custody.keyring import Keyring
from sealbot.custody.sealing import open_material
from sealbot.custody.secrets import ApiCredentials
from sealbot.custody.service import Custody
from sealbot.custody.signer import LocalSigner, SignRequest
from sealbot.custody.store_adapters import StoreAuditSink, StoreCredentialSource, binding_of, blob_of
from sealbot.logs import make_handler
from sealbot.store.db import is_sqlite
from sealbot.store.uow import UnitOfWork

from .conftest import Db, add_user_with_accounts


def _forms(value: str) -> set[bytes]:
    raw = value.encode()
    forms = {raw, raw.hex().encode(), raw.hex().upper().encode()}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(raw)
        forms |= {encoded, encoded.rstrip(b"=")}
    return forms


def _dump_database(db: Db) -> bytes:
    """Every column of every row of every table, as bytes; plus the raw SQLite files."""
    engine = sa.create_engine(db.url.replace("postgresql://", "postgresql+psycopg://", 1))
    chunks: list[bytes] = []
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                for row in conn.execute(sa.select(table)):
                    for value in row:
                        if isinstance(value, bytes | bytearray | memoryview):
                            chunks.append(bytes(value))
                        else:
                            chunks.append(str(value).encode())
    finally:
        engine.dispose()
    if is_sqlite(db.url):
        path = Path(db.url.removeprefix("sqlite:///"))
        for file in (path, path.with_name(path.name + "-wal")):
            if file.exists():
                chunks.append(file.read_bytes())
    return b"\x00".join(chunks)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """All log output at DEBUG through the production handler, SQL statements included."""
    stream = io.StringIO()
    handler = make_handler(stream)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # every statement and its parameters
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


def test_leak_drill(db: Db, file_keyring: Keyring, captured_logs: io.StringIO) -> None:
    log = logging.getLogger("sealbot.test.drill")
    custody = Custody(file_keyring)
    planted: dict[tuple[int, int], ApiCredentials] = {}
    needles: list[str] = []
    for n in range(4):
        owner, accounts = add_user_with_accounts(db, f"user{n}@example.com", 2, allowed=["BTC/USDT"])
        for account in accounts:
            creds = ApiCredentials(secrets.token_urlsafe(48), secrets.token_hex(32),
                                   passphrase=f"pass-{secrets.token_hex(6)}" if n % 2 else None)
            planted[(owner, account)] = creds
            needles += [creds.api_key.reveal(), creds.secret.reveal()]
            if creds.passphrase is not None:
                needles.append(creds.passphrase.reveal())
            with UnitOfWork(db.factory) as uow:
                custody.seal_credentials(uow, owner, account, creds)
            # the classic mistakes: logging the request object, the secret, an f-string
            log.info("linked account %s with %r", account, creds)
            log.debug("secret=%s passphrase=%s", creds.secret, creds.passphrase)
            log.warning(f"credentials for {account}: {creds}")
    ed_owner, (ed_account,) = add_user_with_accounts(db, "ed@example.com", 1)
    with UnitOfWork(db.factory) as uow:
        pem = custody.generate_ed25519(uow, ed_owner, ed_account)
        custody.attach_api_key(uow, ed_owner, ed_account, "ed25519-api-key-" + secrets.token_hex(16))
    with UnitOfWork(db.factory) as uow:
        row = uow.credentials.current(ed_owner, ed_account)
        material = open_material(blob_of(row), binding_of(row), file_keyring)
        assert material.ed25519_seed is not None and material.api_key is not None
        needles += [material.ed25519_seed.reveal(), material.api_key.reveal()]
        assert row.public_key == pem  # the public key is meant to be shown

    # the signer at work, refusals and errors included
    signer = LocalSigner(file_keyring, StoreCredentialSource(db.factory), StoreAuditSink(db.factory))
    for (owner, account), creds in list(planted.items())[:3]:
        handle = signer.handle_for(owner, account, "drill")
        log.info("handle %r api key %s", handle, signer.api_key(handle))
        signer.sign(handle, b"symbol=BTCUSDT&side=BUY&timestamp=1",
                    SignRequest("binance", "POST", "api/v3/order", {}), "hex")
        try:
            signer.sign(handle, b"coin=BTC&address=x", SignRequest("binance", "POST", "sapi/v1/asset/transfer", {}),
                        "hex")
        except Exception:
            log.exception("refused for %s", creds)
    wrong = Custody(Keyring(FileKek(b"z" * 32)))
    with UnitOfWork(db.factory) as uow:
        try:
            wrong.check_opens(uow, *next(iter(planted)))
        except SealedCredentialError:
            log.exception("wrong KEK")

    dump = _dump_database(db)
    logs = captured_logs.getvalue().encode()
    assert len(dump) > 1000 and b"INSERT INTO credentials" in logs  # the drill saw real data and real SQL
    for needle in needles:
        for form in _forms(needle):
            assert form not in dump, "a secret is in the database"
            assert form not in logs, "a secret is in the logs"
    # and the hints are all the database knows about the keys
    for creds in planted.values():
        assert creds.hint.encode() in dump
