"""The socket signer: same answers as in-process, peer uid checked, errors typed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sealbot.custody.envelope import Binding
from sealbot.custody.errors import CredentialNotFound, CustodyError, SigningRefused
from sealbot.custody.kek_file import load_file_kek
from sealbot.custody.keyring import Keyring
from sealbot.custody.sealing import seal_api_credentials
from sealbot.custody.secrets import ApiCredentials
from sealbot.custody.service import Custody
from sealbot.custody.signer import LocalSigner, SignRequest, StoredCredential
from sealbot.custody.signer_socket import SignerServer, SocketSigner
from sealbot.store.models import AuditRecord
from sealbot.store.uow import UnitOfWork

from .conftest import Db, MemoryAudit, MemorySource, add_user_with_accounts
from .test_custody_signer import BINANCE_API_KEY, BINANCE_QUERY, BINANCE_SECRET, BINANCE_SIGNATURE, ORDER


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sbs", dir="/tmp"))  # AF_UNIX paths are limited to 107 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _serve(keyring: Keyring, path: Path, uids: set[int]) -> tuple[SignerServer, MemoryAudit]:
    sealed = seal_api_credentials(ApiCredentials(BINANCE_API_KEY, BINANCE_SECRET), Binding(1, 30, 1), keyring)
    source, audit = MemorySource(), MemoryAudit()
    source.add(StoredCredential(1, 30, 1, sealed.algorithm, sealed.blob, sealed.hsm_label, frozenset({"LTCBTC"})))
    server = SignerServer(path, LocalSigner(keyring, source, audit), uids)
    server.start_in_thread()
    return server, audit


def test_socket_signer_matches_the_known_answer_and_audits_the_peer(file_keyring: Keyring, short_dir: Path) -> None:
    server, audit = _serve(file_keyring, short_dir / "signer.sock", {os.getuid()})
    client = SocketSigner(short_dir / "signer.sock")
    try:
        assert (os.stat(short_dir / "signer.sock").st_mode & 0o777) == 0o660
        handle = client.handle_for(1, 30, "socket test")
        assert client.sign(handle, BINANCE_QUERY, ORDER, "hex") == BINANCE_SIGNATURE
        assert client.api_key(handle) == BINANCE_API_KEY
        assert audit.records[0][0] == f"uid:{os.getuid()}/pid:{os.getpid()}"
        with pytest.raises(SigningRefused) as refused:
            client.sign(handle, b"coin=BTC&address=x", SignRequest("binance", "POST", "sapi/v1/capital/withdraw/apply",
                                                                  {}), "hex")
        assert refused.value.policy_rule == "withdrawal"
        assert audit.actions()[-1] == "signer.refused"
        with pytest.raises(CredentialNotFound):
            client.handle_for(1, 31, "absent")
        started = time.perf_counter()
        for _ in range(200):
            client.sign(handle, BINANCE_QUERY, ORDER, "hex")
        assert (time.perf_counter() - started) / 200 < 0.01  # fast enough for ccxt's synchronous sign()
        assert client.forget(account_id=30) == 1
        with pytest.raises(CustodyError, match="unknown or revoked"):
            client.sign(handle, BINANCE_QUERY, ORDER, "hex")
    finally:
        client.close()
        server.shutdown()


def test_a_peer_outside_the_allowed_uids_gets_nothing(file_keyring: Keyring, short_dir: Path) -> None:
    server, audit = _serve(file_keyring, short_dir / "signer.sock", {os.getuid() + 4242})
    client = SocketSigner(short_dir / "signer.sock", timeout=2)
    try:
        with pytest.raises(CustodyError, match="closed the connection"):
            client.handle_for(1, 30, "intruder")
        assert "signer.peer_refused" in audit.actions()
        assert "credential.accessed" not in audit.actions()
    finally:
        client.close()
        server.shutdown()


def test_an_unreachable_signer_is_a_clear_error(short_dir: Path) -> None:
    with pytest.raises(CustodyError, match="unreachable"):
        SocketSigner(short_dir / "absent.sock").handle_for(1, 1, "x")


_SERVER = r"""
import sys
from pathlib import Path
from types import SimpleNamespace
from sealbot.custody.runtime import run_signer_server

settings = SimpleNamespace(kek_provider="file", effective_kek_file=Path(sys.argv[2]), pkcs11_module=Path("/x"),
                           pkcs11_token_label="", pkcs11_pin=None, effective_database_url=sys.argv[3])
run_signer_server(Path(sys.argv[1]), settings)
"""


def test_sealbot_signer_process_serves_then_stops_on_sigterm(db: Db, kek_path: Path, short_dir: Path) -> None:
    if not db.url.startswith("sqlite"):
        pytest.skip("one backend is enough for the process test")
    owner, (account,) = add_user_with_accounts(db, "proc@example.com", 1, allowed=["LTC/BTC"])
    keyring = Keyring(load_file_kek(kek_path))
    with UnitOfWork(db.factory) as uow:
        Custody(keyring).seal_credentials(uow, owner, account, ApiCredentials(BINANCE_API_KEY, BINANCE_SECRET))
    sock = short_dir / "signer.sock"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    child = subprocess.Popen([sys.executable, "-c", _SERVER, str(sock), str(kek_path), db.url], env=env)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        client = SocketSigner(sock)
        handle = client.handle_for(owner, account, "process test")
        assert client.sign(handle, BINANCE_QUERY, ORDER, "hex") == BINANCE_SIGNATURE
        client.close()
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=15) == 0
        assert not sock.exists()
    finally:
        if child.poll() is None:
            child.kill()
    with UnitOfWork(db.factory) as uow:
        actors = list(uow.session.scalars(sa.select(AuditRecord.actor).where(
            AuditRecord.action == "credential.accessed")))
    assert actors == [f"uid:{os.getuid()}/pid:{os.getpid()}"]


def test_the_api_key_the_client_process_receives_is_masked_in_its_logs(monkeypatch: pytest.MonkeyPatch,
                                                                       short_dir: Path) -> None:
    """The engine process gets the API key over the socket (for the request header) and
    never built a ``Secret`` of it; a KuCoin key (24 hex) is too short for the shape mask."""
    from sealbot.custody import redaction
    from sealbot.custody.signer import SigningHandle

    kucoin_key = "6704b7bd9e3c2d00013c0a2f"
    monkeypatch.setattr(redaction, "_registry", redaction._Registry())  # a process that never saw it
    client = SocketSigner(short_dir / "unused.sock")
    monkeypatch.setattr(client, "_call", lambda request: kucoin_key)
    line = f"GET /api/v1/accounts, Request: {{'KC-API-KEY': '{kucoin_key}'}}"
    assert kucoin_key in redaction.redact(line)
    assert client.api_key(SigningHandle(1, 2, 1, "hmac-sha256", "ref")) == kucoin_key
    assert kucoin_key not in redaction.redact(line)
