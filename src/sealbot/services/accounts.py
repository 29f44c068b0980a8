"""Use cases for users and their exchange accounts: register, link (check, then seal), list."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher

from sealbot import audit
from sealbot.custody.errors import CustodyError
from sealbot.custody.material import SigningAlgorithm
from sealbot.custody.secrets import ApiCredentials
from sealbot.custody.service import CredentialView
from sealbot.custody.signer import LocalSigner, StoredCredential
from sealbot.custody.signer_socket import SocketSigner
from sealbot.custody.store_adapters import blob_of
from sealbot.domain.errors import InvalidConfig, NotFound, Refused
from sealbot.domain.market import Pair
from sealbot.services.platform import Platform
from sealbot.store import UnitOfWork
from sealbot.venues.base import PermissionReport, Verdict
from sealbot.venues.permissions import check_key
from sealbot.venues.signing import PASSPHRASE_EXCHANGES, SIGNER_EXCHANGES

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
MAX_EMAIL = 320  # the users.email column (and RFC 5321's limit)
MAX_LABEL = 120  # the exchange_accounts.label column


@dataclass(frozen=True, slots=True)
class AccountView:
    """What a user may see of a linked account: never a secret, only the key's last four."""

    id: int
    exchange: str
    label: str
    status: str
    api_key_hint: str
    permissions: Mapping[str, Any]
    checked_at: datetime | None


def register_user(platform: Platform, email: str, password: str, *, is_admin: bool = False) -> int:
    """A new user with an argon2id password hash; returns the user id."""
    email = email.strip().lower()
    if "@" not in email:
        raise InvalidConfig("email", "is not an e-mail address")
    if len(email) > MAX_EMAIL:  # a server error on PostgreSQL before (the dashboard's form has no limit)
        raise InvalidConfig("email", f"must be at most {MAX_EMAIL} characters")
    if len(password) < 10:
        raise InvalidConfig("password", "must be at least 10 characters")
    with platform.uow() as uow:
        user = uow.users.add(email, _hasher.hash(password), is_admin=is_admin)
        audit.record(uow.session, actor=f"user:{user.id}", action="user.registered", subject=f"user:{user.id}",
                     details={})
        return int(user.id)


async def link_account(platform: Platform, owner_id: int, exchange: str, label: str, credentials: ApiCredentials,
                       *, allowed_pairs: Iterable[str] | None = None, is_paper: bool = False) -> AccountView:
    """Seal a pasted key, ask the exchange what it may do, and keep it only if policy allows.

    Everything happens in one transaction: a refused key (withdrawals enabled, no IP
    restriction under the strict policy, trading disabled) leaves no row behind, only
    an audit record of the refusal.
    """

    def seal(uow: UnitOfWork, account_id: int) -> CredentialView:
        return platform.custody.seal_credentials(uow, owner_id, account_id, credentials)

    return await _link(platform, owner_id, exchange, label, seal, allowed_pairs, is_paper)


_API_KEY = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no space: it travels in an HTTP header
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PEM_WHITESPACE = re.compile(r"[\t\n\r]")


def check_pasted_key(exchange: str, api_key: str, api_secret: str, passphrase: str | None) -> None:
    """Refuse a pasted key that cannot be right, naming the field, never the value, before
    anything is sealed or sent: a control character in the API key (or KuCoin's
    passphrase) used to fail as a server error when the permission check put it in a
    header, and a KuCoin key without its passphrase as an opaque custody error. Called on
    the pasted text, before it is wrapped in custody's secret types."""
    _require_supported(exchange)
    if not _API_KEY.fullmatch(api_key):
        raise InvalidConfig("api_key", "must be printable characters without spaces or line breaks")
    if _CONTROL.search(_PEM_WHITESPACE.sub("", api_secret)):
        raise InvalidConfig("api_secret", "must not contain control characters")
    if passphrase is not None and _CONTROL.search(passphrase):
        raise InvalidConfig("passphrase", "must not contain control characters or line breaks")
    if exchange in PASSPHRASE_EXCHANGES and not passphrase:
        raise InvalidConfig("passphrase", f"a {exchange} key needs the passphrase set when it was created")


async def link_generated_key(platform: Platform, owner_id: int, exchange: str, label: str,
                             register_public_key: Callable[[str], str], *,
                             allowed_pairs: Iterable[str] | None = None, is_paper: bool = False) -> AccountView:
    """An Ed25519 key born in custody: only the public key leaves, registered with the
    exchange by ``register_public_key(pem) -> api_key`` (the user, or simex's admin API
    in the demo); the exchange's API key is then attached and the key checked."""

    def seal(uow: UnitOfWork, account_id: int) -> CredentialView:
        pem = platform.custody.generate_ed25519(uow, owner_id, account_id)
        return platform.custody.attach_api_key(uow, owner_id, account_id, register_public_key(pem))

    return await _link(platform, owner_id, exchange, label, seal, allowed_pairs, is_paper)


async def _link(platform: Platform, owner_id: int, exchange: str, label: str,
                seal: Callable[[UnitOfWork, int], CredentialView], allowed_pairs: Iterable[str] | None,
                is_paper: bool) -> AccountView:
    _require_supported(exchange)
    allowed_pairs = _pair_list(allowed_pairs)
    label = label.strip()
    if not 1 <= len(label) <= MAX_LABEL:  # the dashboard's form has no schema in front of it
        raise InvalidConfig("label", f"must be 1 to {MAX_LABEL} characters")
    try:
        with platform.uow() as uow:
            account = uow.accounts.add(owner_id, exchange, label, is_paper=is_paper, allowed_pairs=allowed_pairs)
            view = seal(uow, account.id)
            report = await _check_sealed(platform, uow, owner_id, account.id)
            report.raise_if_refused()
            uow.accounts.record_permissions(owner_id, account.id, report.to_dict())
            if report.verdict is Verdict.FLAGGED:
                uow.accounts.set_status(owner_id, account.id, "flagged")
            audit.record(uow.session, actor=f"user:{owner_id}", action="account.linked",
                         subject=f"account:{account.id}",
                         details={"exchange": exchange, "verdict": report.verdict.value,
                                  "algorithm": view.algorithm, "api_key_hint": view.api_key_hint})
            return AccountView(account.id, exchange, label, account.status, view.api_key_hint, report.to_dict(),
                               account.permission_checked_at)
    except Refused as refusal:
        with platform.uow() as uow:
            audit.record(uow.session, actor=f"user:{owner_id}", action="account.link_refused",
                         subject=f"user:{owner_id}", details={"exchange": exchange, "reason": refusal.reason})
        raise


def _pair_list(pairs: Iterable[str] | None) -> list[str] | None:
    """The signer's allow-list as ``BASE/QUOTE`` symbols, each bad entry named: an entry
    that is no pair used to be stored as given and silently match nothing."""
    if pairs is None:
        return None
    symbols = []
    for i, text in enumerate(pairs):
        try:
            symbols.append(Pair.parse(str(text)).symbol)
        except ValueError:
            raise InvalidConfig(f"allowed_pairs.{i}", "must be a pair like BTC/USDT") from None
    return symbols


def _require_supported(exchange: str) -> None:
    """Refuse, before anything is sealed or stored, an exchange the signer cannot sign
    for: the account could never trade (the engine's venue refuses it, and the link-time
    permission check would only report it as "not checked")."""
    if exchange not in SIGNER_EXCHANGES:
        raise InvalidConfig("exchange", f"{exchange!r} is not supported: sealbot trades on "
                                        f"{', '.join(sorted(SIGNER_EXCHANGES))}")


async def _check_sealed(platform: Platform, uow: UnitOfWork, owner_id: int, account_id: int) -> PermissionReport:
    """Check the just-sealed, not yet committed credential with a signer that reads it
    from this transaction and audits into it (a second connection would not see it).

    In socket mode this process has no KEK: the sealed row travels to the ``sealbot
    signer`` process, which opens it with its KEK and returns a read-only handle
    (``adopt``); the access is audited here, in this transaction, as in-process."""
    row = uow.credentials.current(owner_id, account_id)
    stored = StoredCredential(row.owner_id, row.account_id, row.version, SigningAlgorithm(row.algorithm),
                              blob_of(row), row.hsm_label, None)
    exchange = str(uow.accounts.get(owner_id, account_id).exchange)
    if platform.loaded_keyring is None:
        return await _check_through_signer_process(platform, uow, stored, exchange)
    signer = LocalSigner(platform.keyring, _OneCredential(stored), _SessionAudit(uow.session))
    handle = signer.handle_for(owner_id, account_id, _CHECK_PURPOSE)
    return await check_key(exchange, signer, handle, urls=platform.urls_for(exchange),
                           policy=platform.ip_policy, egress_ip=platform.egress_ip)


_CHECK_PURPOSE = "permission check at link time"


async def _check_through_signer_process(platform: Platform, uow: UnitOfWork, stored: StoredCredential,
                                        exchange: str) -> PermissionReport:
    remote = platform.signer
    if not isinstance(remote, SocketSigner):
        raise CustodyError("custody: no KEK in this process and no signer process to check the key with")
    handle = remote.adopt(stored, _CHECK_PURPOSE)
    audit.record(uow.session, actor="signer", action="credential.accessed", subject=f"account:{stored.account_id}",
                 details={"owner_id": stored.owner_id, "purpose": _CHECK_PURPOSE, "version": stored.version,
                          "algorithm": stored.algorithm.value, "via": "socket"})
    try:
        return await check_key(exchange, remote, handle, urls=platform.urls_for(exchange),
                               policy=platform.ip_policy, egress_ip=platform.egress_ip)
    finally:
        with suppress(CustodyError):  # the handle expires in the signer anyway
            remote.forget(account_id=stored.account_id)


@dataclass(frozen=True, slots=True)
class _OneCredential:
    stored: StoredCredential

    def load(self, owner_id: int, account_id: int) -> StoredCredential:
        return self.stored


@dataclass(frozen=True, slots=True)
class _SessionAudit:
    session: Any

    def record(self, actor: str, action: str, subject: str, details: Mapping[str, object]) -> None:
        audit.record(self.session, actor=actor, action=action, subject=subject, details=dict(details))


def list_accounts(platform: Platform, owner_id: int) -> list[AccountView]:
    with platform.uow() as uow:
        views = []
        for account in uow.accounts.list(owner_id):
            try:
                hint = uow.credentials.current(owner_id, account.id).api_key_hint
            except NotFound:  # a revoked account has no live credential
                hint = ""
            views.append(AccountView(account.id, account.exchange, account.label, account.status, hint,
                                     account.permission_report or {}, account.permission_checked_at))
        return views
