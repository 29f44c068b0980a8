"""Building custody from the instance's settings: keyrings, signers, the signer process.

Custody may not import ``sealbot.config`` (layering), so these take any object with
the settings' attribute names (``sealbot.config.Settings`` fits ``CustodySettings``).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from sealbot.custody.errors import KekUnavailable
from sealbot.custody.kek_vault import VaultTransitKek
from sealbot.custody.keyring import DEFAULT_KEK_LABEL, Keyring, open_file_keyring, open_pkcs11_keyring
from sealbot.custody.signer import LocalSigner, Signer
from sealbot.custody.signer_socket import SignerServer, SocketSigner
from sealbot.custody.store_adapters import StoreAuditSink, StoreChannelKeySource, StoreCredentialSource
from sealbot.store.db import make_session_factory

log = logging.getLogger(__name__)


class CustodySettings(Protocol):
    """The settings custody reads (a subset of ``sealbot.config.Settings``)."""

    @property
    def kek_provider(self) -> Any: ...  # "file" | "pkcs11" (a str enum)

    @property
    def effective_kek_file(self) -> Path: ...

    @property
    def pkcs11_module(self) -> Path: ...

    @property
    def pkcs11_token_label(self) -> str: ...

    @property
    def pkcs11_pin(self) -> Any: ...  # pydantic SecretStr | None

    @property
    def effective_database_url(self) -> str: ...


def keyring_from_settings(settings: CustodySettings, *, create_kek: bool = False) -> Keyring:
    """The configured KEK provider, or ``KekUnavailable`` naming what is missing."""
    provider = str(getattr(settings.kek_provider, "value", settings.kek_provider))
    if provider == "file":
        return open_file_keyring(settings.effective_kek_file)
    if provider == "pkcs11":
        pin = settings.pkcs11_pin
        if pin is None:
            raise KekUnavailable("pkcs11_pin", "the pkcs11 provider needs the token's user PIN")
        text = pin.get_secret_value() if hasattr(pin, "get_secret_value") else str(pin)
        return open_pkcs11_keyring(settings.pkcs11_module, settings.pkcs11_token_label, text, DEFAULT_KEK_LABEL,
                                   create_kek=create_kek)
    if provider == "vault":  # untested against a real Vault: see custody.kek_vault
        token = getattr(settings, "vault_token", None)
        if token is None:
            raise KekUnavailable("vault_token", "the vault provider needs a Vault token")
        text = token.get_secret_value() if hasattr(token, "get_secret_value") else str(token)
        return Keyring(VaultTransitKek(str(getattr(settings, "vault_url", "")), text))
    raise KekUnavailable("kek_provider", f"{provider!r} is not supported (file, pkcs11, vault)")


def local_signer(settings: CustodySettings, keyring: Keyring | None = None, *, handle_ttl: float = 30.0) -> LocalSigner:
    """The in-process signer over the instance's database."""
    factory = make_session_factory(settings.effective_database_url)
    return LocalSigner(keyring or keyring_from_settings(settings), StoreCredentialSource(factory),
                       StoreAuditSink(factory), handle_ttl=handle_ttl, channel_keys=StoreChannelKeySource(factory))


def socket_signer(socket_path: Path) -> SocketSigner:
    """The client of a separate ``sealbot signer`` process (``signer = "socket"``)."""
    return SocketSigner(socket_path)


def make_signer(settings: CustodySettings, keyring: Keyring | None = None) -> Signer:
    """The signer the settings ask for: ``signer = "socket"`` -> a client of the
    ``sealbot signer`` process at ``signer_socket`` (no KEK needed here); otherwise the
    in-process ``LocalSigner``."""
    mode = str(getattr(getattr(settings, "signer", "in-process"), "value", getattr(settings, "signer", "")))
    if mode == "socket":
        return socket_signer(Path(getattr(settings, "effective_signer_socket")))  # noqa: B009
    return local_signer(settings, keyring)


def run_signer_server(socket_path: Path, settings: CustodySettings, *, allowed_uids: Iterable[int] | None = None,
                      handle_ttl: float = 30.0) -> None:
    """``sealbot signer``: serve the signer on ``socket_path`` until SIGTERM/SIGINT.

    Only processes whose uid is in ``allowed_uids`` (default: this process's own uid)
    are served. This process is the only one that needs the KEK file or the token PIN.
    """
    uids = frozenset(allowed_uids) if allowed_uids is not None else frozenset({os.getuid()})
    server = SignerServer(socket_path, local_signer(settings, handle_ttl=handle_ttl), uids)

    def stop(_signum: int, _frame: object) -> None:
        # shutdown() waits for serve_forever() to return, so it must run off this thread
        threading.Thread(target=server.request_stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("signer listening on %s for uids %s", socket_path, sorted(uids))
    try:
        server.serve_forever()
    finally:
        server.close()
    log.info("signer stopped")
