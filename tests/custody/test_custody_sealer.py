"""Sealing through the signer process (socket mode): what comes back opens with the
signer's KEK and only there, the plaintext never comes back, and the sealing operations
a socket peer may call cannot be bent into moving a key or deleting the KEK."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealbot.custody.envelope import Binding
from sealbot.custody.errors import CustodyError, SigningRefused
from sealbot.custody.keyring import Keyring
from sealbot.custody.sealing import KeyringSealer, open_material
from sealbot.custody.secrets import ApiCredentials, Secret
from sealbot.custody.signer import LocalSigner, StoredCredential
from sealbot.custody.signer_socket import SignerServer, SocketSigner

from .conftest import MemoryAudit, MemorySource
from .test_custody_signer import BINANCE_API_KEY, BINANCE_QUERY, BINANCE_SECRET, ORDER


@pytest.fixture
def remote(file_keyring: Keyring) -> Iterator[SocketSigner]:
    folder = Path(tempfile.mkdtemp(prefix="sbs", dir="/tmp"))  # AF_UNIX paths are short
    server = SignerServer(folder / "signer.sock", LocalSigner(file_keyring, MemorySource(), MemoryAudit()),
                          {os.getuid()})
    server.start_in_thread()
    client = SocketSigner(folder / "signer.sock")
    try:
        yield client
    finally:
        client.close()
        server.shutdown()
        shutil.rmtree(folder, ignore_errors=True)


def test_a_key_sealed_over_the_socket_opens_with_the_signers_kek_under_its_binding(
        remote: SocketSigner, file_keyring: Keyring) -> None:
    binding = Binding(7, 70, 1)
    sealed = remote.seal_credentials(binding, ApiCredentials(BINANCE_API_KEY, BINANCE_SECRET))
    assert sealed.binding == binding and sealed.api_key_hint == BINANCE_API_KEY[-4:]
    assert BINANCE_SECRET.encode() not in sealed.blob.ciphertext
    material = open_material(sealed.blob, binding, file_keyring)
    assert material.secret.reveal() == BINANCE_SECRET
    with pytest.raises(CustodyError):
        open_material(sealed.blob, Binding(7, 71, 1), file_keyring)  # AAD: another account's row


def test_an_adopted_handle_signs_reads_but_no_order(remote: SocketSigner) -> None:
    binding = Binding(7, 70, 1)
    sealed = remote.seal_credentials(binding, ApiCredentials(BINANCE_API_KEY, BINANCE_SECRET))
    stored = StoredCredential(7, 70, 1, sealed.algorithm, sealed.blob, None, frozenset({"LTCBTC"}))
    handle = remote.adopt(stored, "permission check at link time")
    assert remote.api_key(handle) == BINANCE_API_KEY
    with pytest.raises(SigningRefused):
        # the caller's allow-list is not trusted: an adopted handle has none
        remote.sign(handle, BINANCE_QUERY, ORDER, "hex")


def test_generated_pairs_and_attached_keys_stay_on_their_account(remote: SocketSigner) -> None:
    pair = remote.generate_ed25519(Binding(7, 70, 1))
    assert pair.public_key_pem is not None and "PUBLIC KEY" in pair.public_key_pem
    attached = remote.attach_api_key(pair, Secret("exchange-issued-key-0001"), Binding(7, 70, 2))
    assert attached.binding == Binding(7, 70, 2) and attached.public_key_pem == pair.public_key_pem
    for elsewhere in (Binding(7, 71, 2), Binding(8, 70, 2), Binding(7, 70, 1)):
        with pytest.raises(CustodyError, match="later version of the same account"):
            remote.attach_api_key(pair, Secret("exchange-issued-key-0001"), elsewhere)


@pytest.mark.parametrize("label", ["sealbot-kek", "sb-kek-1", "sb-hmac-1-2-3", "sb-hmac-1-2-3-zzzzzzzz", ""])
def test_only_credential_token_objects_can_be_discarded(remote: SocketSigner, label: str) -> None:
    with pytest.raises(CustodyError, match="not the label of a credential"):
        remote.discard_token_object(label)


def test_the_in_process_sealer_refuses_the_same_moves(file_keyring: Keyring) -> None:
    sealer = KeyringSealer(file_keyring)
    pair = sealer.generate_ed25519(Binding(1, 2, 1))
    with pytest.raises(CustodyError):
        sealer.attach_api_key(pair, Secret("k"), Binding(1, 3, 2))
