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

from sealbot.config import Settings, SignerMode, load_settings
from sealbot.custody.errors import CustodyError
from sealbot.custody.keyring import Keyring
from sealbot.custody.runtime import keyring_from_settings, local_signer, socket_signer
from sealbot.custody.service import Custody
from sealbot.custody.signer import Signer
from sealbot.engine.journal import AccountRecord
from sealbot.store import UnitOfWork, make_session_factory
from sealbot.venues.base import IpPolicy, Venue
from sealbot.venues.ccxt_venue import CcxtVenue


@dataclass
class Platform:
    """The instance's live parts: database sessions, custody and the signer, venues.

    In socket mode (``signer = "socket"``) there is no keyring here at all
    (``loaded_keyring`` is None): sealing, opening and signing happen in the
    ``sealbot signer`` process, and this process never reads the KEK.
    """

    settings: Settings
    session_factory: sessionmaker[Session]
    loaded_keyring: Keyring | None
    signer: Signer
    custody: Custody
    exchange_urls: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    egress_ip: str | None = None

    @property
    def keyring(self) -> Keyring:
        """The in-process keyring; ``CustodyError`` in socket mode, where this process has none."""
        if self.loaded_keyring is None:
            raise CustodyError("custody: this process has no KEK (signer = \"socket\"): sealing and opening "
                               "happen in the `sealbot signer` process")
        return self.loaded_keyring

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


def open_platform(settings: Settings, *, exchange_urls: Mapping[str, Mapping[str, Any]] | None = None,
                  egress_ip: str | None = None) -> Platform:
    factory = make_session_factory(settings.effective_database_url)
    if settings.signer is SignerMode.SOCKET:
        # Sealing, opening and signing all happen in the `sealbot signer` process: this
        # process neither opens the KEK file nor logs in to a token (docs/security.md).
        remote = socket_signer(settings.effective_signer_socket)
        return Platform(settings, factory, None, remote, Custody(None, remote, sealer=remote),
                        exchange_urls or {}, egress_ip)
    keyring = keyring_from_settings(settings)
    local = local_signer(settings, keyring)
    return Platform(settings, factory, keyring, local, Custody(keyring, local), exchange_urls or {}, egress_ip)


_served: Platform | None = None


def serve_platform(platform: Platform | None) -> None:
    """Make ``platform`` the one the web app serves in this process.

    ``uvicorn`` builds the app from an import string with no arguments, and the
    services layer may not import the web layer; the demo (whose platform points at its
    own simex and instance directory) registers its platform here before it serves."""
    global _served
    _served = platform


def platform_to_serve() -> Platform:
    """The registered platform, else one opened from this process's settings (``sealbot serve``)."""
    return _served if _served is not None else open_platform(load_settings())
