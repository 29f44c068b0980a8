"""Custody throughput: seal, unseal and sign operations per second, file and pkcs11 KEKs.

    .venv/bin/python bench/custody.py [--seconds 1.0]

The pkcs11 rows run against a throwaway SoftHSM2 token (skipped when SoftHSM2 is not
installed). "sign" is a full signer call: handle lookup, policy check on the payload,
then HMAC-SHA256 (file: unseal + HMAC in process; pkcs11: HMAC inside the token).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from sealbot.custody.envelope import Binding
from sealbot.custody.errors import CredentialNotFound
from sealbot.custody.kek_file import FileKek
from sealbot.custody.keyring import Keyring, open_pkcs11_keyring
from sealbot.custody.sealing import generate_ed25519, open_material, seal_api_credentials
from sealbot.custody.secrets import ApiCredentials
from sealbot.custody.signer import LocalSigner, SignRequest, StoredCredential
from sealbot.custody.signer_socket import SignerServer, SocketSigner

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
QUERY = (b"symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
         b"&recvWindow=5000&timestamp=1499827319559")
ORDER = SignRequest("binance", "POST", "api/v3/order", {"symbol": "LTCBTC"})


class _Source:
    def __init__(self) -> None:
        self.rows: dict[tuple[int, int], StoredCredential] = {}

    def load(self, owner_id: int, account_id: int) -> StoredCredential:
        try:
            return self.rows[(owner_id, account_id)]
        except KeyError:
            raise CredentialNotFound(owner_id, account_id) from None


class _NullAudit:
    def record(self, actor: str, action: str, subject: str, details: Mapping[str, object]) -> None:
        pass


def rate(fn: Callable[[int], object], seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(50):
            fn(count)
            count += 1
    return count / elapsed


def bench(name: str, keyring: Keyring, seconds: float, cleanup: Callable[[str], object] | None) -> None:
    creds = ApiCredentials(API_KEY, SECRET)
    labels: list[str] = []

    def seal(i: int) -> None:
        sealed = seal_api_credentials(creds, Binding(1, i, 1), keyring)
        if sealed.hsm_label:
            labels.append(sealed.hsm_label)

    sealed = seal_api_credentials(creds, Binding(1, 1, 1), keyring)
    source = _Source()
    source.rows[(1, 1)] = StoredCredential(1, 1, 1, sealed.algorithm, sealed.blob, sealed.hsm_label,
                                           frozenset({"LTCBTC"}))
    ed = generate_ed25519(Binding(1, 2, 1), keyring)
    source.rows[(1, 2)] = StoredCredential(1, 2, 1, ed.algorithm, ed.blob, ed.hsm_label, frozenset({"LTCBTC"}))
    signer = LocalSigner(keyring, source, _NullAudit(), handle_ttl=3600)
    hmac_handle, ed_handle = signer.handle_for(1, 1, "bench"), signer.handle_for(1, 2, "bench")
    results = {
        "seal": rate(seal, seconds),
        "unseal": rate(lambda _i: open_material(sealed.blob, sealed.binding, keyring), seconds),
        "sign hmac": rate(lambda _i: signer.sign(hmac_handle, QUERY, ORDER, "hex"), seconds),
        "sign ed25519": rate(lambda _i: signer.sign(ed_handle, QUERY, ORDER, "base64"), seconds),
    }
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        server = SignerServer(Path(tmp) / "s.sock", signer, {os.getuid()})
        server.start_in_thread()
        client = SocketSigner(Path(tmp) / "s.sock")
        remote = client.handle_for(1, 1, "bench")
        results["sign hmac/socket"] = rate(lambda _i: client.sign(remote, QUERY, ORDER, "hex"), seconds)
        client.close()
        server.shutdown()
    for op, value in results.items():
        print(f"{name:<8} {op:<17} {value:>10,.0f} ops/s")
    if cleanup is not None:
        for label in labels + [x for x in (sealed.hsm_label, ed.hsm_label) if x]:
            cleanup(label)


def bench_rotation(count: int) -> None:
    """Time ``rotate_kek`` over ``count`` credentials in a fresh SQLite database."""
    import sqlalchemy as sa

    from sealbot.custody.envelope import seal_bytes
    from sealbot.custody.service import rotate_kek
    from sealbot.store.db import make_session_factory
    from sealbot.store.migrate import upgrade
    from sealbot.store.models import Credential, ExchangeAccount
    from sealbot.store.uow import UnitOfWork

    old, new = FileKek(os.urandom(32)), FileKek(os.urandom(32))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        factory = make_session_factory(url)
        with UnitOfWork(factory) as uow:
            owner = uow.users.add("bench@example.com", "x").id
            uow.session.execute(sa.insert(ExchangeAccount), [
                {"owner_id": owner, "exchange": "binance", "label": str(i), "status": "active", "is_paper": False,
                 "partition": 0} for i in range(count)])
            ids = list(uow.session.scalars(sa.select(ExchangeAccount.id)))
            rows = []
            for account in ids:
                blob = seal_bytes(b'{"v":1,"alg":"hmac-sha256","secret":"x"}', Binding(owner, account, 1), old)
                rows.append({"account_id": account, "owner_id": owner, "version": 1, "algorithm": "hmac-sha256",
                             "kek_id": blob.kek_id, "wrapped_key": blob.wrapped_key, "nonce": blob.nonce,
                             "ciphertext": blob.ciphertext, "api_key_hint": ""})
            uow.session.execute(sa.insert(Credential), rows)
        started = time.perf_counter()
        rotate_kek(factory, old, new)
        elapsed = time.perf_counter() - started
    print(f"{'file':<8} {'rotate-kek':<17} {count / elapsed:>10,.0f} creds/s ({count:,} in {elapsed:.2f} s, SQLite)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    print(f"{'provider':<8} {'operation':<17} {'rate':>10}")
    bench("file", Keyring(FileKek(os.urandom(32))), args.seconds, None)
    bench_rotation(10_000)
    module = Path("/usr/lib/softhsm/libsofthsm2.so")
    if not module.exists() or shutil.which("softhsm2-util") is None:
        print("pkcs11   skipped: SoftHSM2 not installed")
        return
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "tokens").mkdir()
        conf = Path(tmp) / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {tmp}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n")
        os.environ["SOFTHSM2_CONF"] = str(conf)
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", "1234",
                        "--so-pin", "12345678"], check=True, capture_output=True)
        keyring = open_pkcs11_keyring(module, "bench", "1234", create_kek=True)
        assert keyring.token is not None
        bench("pkcs11", keyring, args.seconds, keyring.token.destroy)


if __name__ == "__main__":
    main()
