"""The composition root: one place that turns settings into working parts.

Web, CLI and demo ask for a ``Platform`` and call use cases with it; nothing else
builds a keyring, a signer or a venue. Exchange URL overrides (simex, testnets) are
given per exchange id, so the same code trades on simex in the demo and tests and on
the real exchange in production.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from sealbot.config import KekProvider, Settings, SignerMode
from sealbot.custody.keyring import Keyring, open_file_keyring, open_pkcs11_keyring
from sealbot.custody.service import Custody
from sealbot.custody.signer import LocalSigner
from sealbot.custody.signer_socket import SignerServer, SocketSigner
from sealbot.custody.store_adapters import StoreAuditSink, StoreCredentialSource
from sealbot.domain.errors import InvalidConfig
from sealbot.engine.journal import AccountRecord
from sealbot.store import UnitOfWork, make_session_factory
from sealbot.venues.base import IpPolicy, Venue
from sealbot.venues.ccxt_venue import CcxtVenue


@dataclass
class Platform:
    """The instance's live parts: database sessions, custody and the signer, venues."""

    settings: Settings
    session_factory: sessionmaker[Session]
    keyring: Keyring
    signer: LocalSigner | SocketSigner
    custody: Custody
    exchange_urls: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    egress_ip: str | None = None

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)

    @property
    def ip_policy(self) -> IpPolicy:
        return IpPolicy(self.settings.permission_policy.value)

    def urls_for(self, exchange: str) -> dict[str, Any] | None:
        urls = self.exchange_urls.get(exchange)
        return dict(urls) if urls else None

    async def venue_for(self, account: AccountRecord) -> Venue:
        """A ccxt venue for one linked account, signing through the signer only."""
        owner_id, account_id = int(account.user), int(account.id)
        handle = self.signer.handle_for(owner_id, account_id, "engine")
        return CcxtVenue(account.exchange, signer=self.signer, handle=handle, urls=self.urls_for(account.exchange),
                         ip_policy=self.ip_policy, egress_ip=self.egress_ip)


def open_keyring(settings: Settings) -> Keyring:
    if settings.kek_provider is KekProvider.FILE:
        return open_file_keyring(settings.effective_kek_file)
    if settings.kek_provider is KekProvider.PKCS11:
        if settings.pkcs11_pin is None:
            raise InvalidConfig("pkcs11_pin", "is required when kek_provider is pkcs11")
        return open_pkcs11_keyring(settings.pkcs11_module, settings.pkcs11_token_label,
                                   settings.pkcs11_pin.get_secret_value())
    raise InvalidConfig("kek_provider", f"{settings.kek_provider.value} is not supported by this build yet")


def open_platform(settings: Settings, *, exchange_urls: Mapping[str, Mapping[str, Any]] | None = None,
                  egress_ip: str | None = None) -> Platform:
    factory = make_session_factory(settings.effective_database_url)
    keyring = open_keyring(settings)
    signer: LocalSigner | SocketSigner
    if settings.signer is SignerMode.SOCKET:
        # Signing (the only use of a plaintext secret) happens in the `sealbot signer`
        # process. Sealing a new key still needs the KEK here: see docs/security.md.
        signer = SocketSigner(settings.effective_signer_socket)
        custody = Custody(keyring)
    else:
        signer = LocalSigner(keyring, StoreCredentialSource(factory), StoreAuditSink(factory))
        custody = Custody(keyring, signer)
    return Platform(settings, factory, keyring, signer, custody, exchange_urls or {}, egress_ip)


def run_signer(settings: Settings, allowed_uids: list[int]) -> None:
    """``sealbot signer``: serve the signer on its Unix socket until interrupted. Only
    processes running as one of ``allowed_uids`` (checked with SO_PEERCRED) may sign."""
    factory = make_session_factory(settings.effective_database_url)
    keyring = open_keyring(settings)
    signer = LocalSigner(keyring, StoreCredentialSource(factory), StoreAuditSink(factory))
    server = SignerServer(settings.effective_signer_socket, signer, allowed_uids)
    try:
        server.serve_forever()
    finally:
        server.close()
