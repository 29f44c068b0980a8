"""Setting an instance up: directories, the key-encryption key, the database schema."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sealbot.config import KekProvider, Settings, SignerMode, masked_view
from sealbot.custody.errors import CustodyError
from sealbot.custody.kek_file import create_kek_file, load_file_kek
from sealbot.custody.notify_keys import ChannelBinding, NotificationSigner, seal_channel_key
from sealbot.custody.runtime import keyring_from_settings, socket_signer
from sealbot.custody.secrets import Secret
from sealbot.store import migrate

ChannelKeySealer = Callable[[int, int, int, str], tuple[str, bytes, bytes, bytes]]


@dataclass
class InitReport:
    """What ``init`` did, for the CLI to print."""

    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    database_url: str = ""

    def lines(self) -> list[str]:
        return (
            [f"created {item}" for item in self.created]
            + [f"kept existing {item}" for item in self.kept]
            + [f"database ready: {self.database_url}"]
        )


def init_instance(settings: Settings) -> InitReport:
    """Create what a fresh instance needs; keep (never overwrite) what already exists.

    The KEK goes to the config directory, apart from the data directory, so a backup
    of the data directory holds nothing that opens a sealed credential.
    """
    report = InitReport(database_url=masked_view(settings)["database_url"])
    for directory in (settings.data_dir, settings.config_dir):
        if directory.exists():
            report.kept.append(f"directory {directory}")
        else:
            directory.mkdir(parents=True, mode=0o700)
            report.created.append(f"directory {directory}")
    if settings.kek_provider is KekProvider.FILE:
        kek = settings.effective_kek_file
        if kek.exists():
            load_file_kek(kek)  # refuses a loose mode or a foreign file now, not at first use
            report.kept.append(f"key-encryption key {kek}")
        else:
            create_kek_file(kek)
            report.created.append(f"key-encryption key {kek} (mode 0600)")
    upgrade_database(settings)
    return report


def upgrade_database(settings: Settings, revision: str = "head", *,
                     clear_unsealable_webhook_keys: bool = False) -> None:
    """Migrate the configured database to ``revision``.

    A migration that must seal data (0008: plaintext webhook keys of notification
    channels) gets a sealer over the instance's KEK, or over the ``sealbot signer``
    process with ``signer = "socket"``; it is built only if such data exists. Where
    neither is reachable that migration stops and changes nothing, unless
    ``clear_unsealable_webhook_keys``: then the channels are kept without their keys.
    """
    url = settings.effective_database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(url, revision, attributes={
        "channel_key_sealer": lambda: channel_key_sealer(settings),
        "clear_unsealable_channel_keys": clear_unsealable_webhook_keys})


def channel_key_sealer(settings: Settings) -> ChannelKeySealer | str:
    """A function sealing a plaintext webhook key for migration 0008, or why none can be had
    here (no KEK readable, signer not running): the migration then says what to do."""
    try:
        if settings.signer is SignerMode.SOCKET:
            client = socket_signer(settings.effective_signer_socket)
            client.forget(owner_id=0)  # a harmless round trip: is the signer there? (no user has id 0)
            remote: NotificationSigner = client

            def seal(owner_id: int, channel_id: int, version: int, secret: str) -> tuple[str, bytes, bytes, bytes]:
                blob = remote.seal_channel_key(ChannelBinding(owner_id, channel_id, version), Secret(secret))
                return blob.kek_id, blob.wrapped_key, blob.nonce, blob.ciphertext

            return seal
        keyring = keyring_from_settings(settings)
    except CustodyError as exc:
        return f"no KEK is reachable here ({exc})"

    def seal_here(owner_id: int, channel_id: int, version: int, secret: str) -> tuple[str, bytes, bytes, bytes]:
        blob = seal_channel_key(Secret(secret), ChannelBinding(owner_id, channel_id, version), keyring)
        return blob.kek_id, blob.wrapped_key, blob.nonce, blob.ciphertext

    return seal_here
