"""Revocation: one account, all of a user's accounts, or everything (``sealbot panic``).

For each affected account, in this order:
1. stop its bots (status ``stopped``; committed first, so the engine places nothing new);
2. cancel its open orders while the exchange still accepts the key — concurrently,
   each with a timeout, so unreachable exchanges cannot hold revocation up; failures
   are reported, never raised;
3. destroy its sealed credentials (blobs overwritten, token objects deleted, the
   signer told to forget its handles), mark the account ``revoked``, and write one
   audit record — these three in one transaction per account.

Destroying sealbot's copy does not disable the key at the exchange: the report says
so, and the user should delete the key there too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from sealbot import audit
from sealbot.config import Settings
from sealbot.custody.errors import KekUnavailable
from sealbot.custody.keyring import Keyring
from sealbot.custody.redaction import redact
from sealbot.custody.runtime import keyring_from_settings, local_signer, socket_signer
from sealbot.custody.service import Custody
from sealbot.custody.signer import LocalSigner, Signer, SigningHandle
from sealbot.custody.signer_socket import SocketSigner
from sealbot.store.db import make_session_factory
from sealbot.store.models import Bot, Credential, ExchangeAccount
from sealbot.store.uow import UnitOfWork
from sealbot.venues.base import Venue

ACTIVE_BOT_STATUSES = ("running", "paused", "error")
CancelStatus = Literal["ok", "failed", "timeout", "skipped"]


@dataclass(frozen=True, slots=True)
class AccountRef:
    """What the order-cancelling callable gets: enough to build a venue, nothing secret."""

    owner_id: int
    account_id: int
    exchange: str
    is_paper: bool


CancelOpenOrders = Callable[[AccountRef], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class AccountOutcome:
    owner_id: int
    account_id: int
    exchange: str
    bots_stopped: tuple[int, ...]
    cancel: CancelStatus
    cancel_detail: str
    credentials_destroyed: int


@dataclass(frozen=True, slots=True)
class RevocationReport:
    scope: str  # "account:12", "user:7", "global"
    reason: str
    accounts: tuple[AccountOutcome, ...]

    @property
    def failed_cancels(self) -> tuple[AccountOutcome, ...]:
        return tuple(a for a in self.accounts if a.cancel in ("failed", "timeout"))

    def lines(self) -> list[str]:
        """Human summary for the CLI and the dashboard."""
        out = [f"revoked {len(self.accounts)} account(s) ({self.scope})"]
        for a in self.accounts:
            out.append(f"  account {a.account_id} ({a.exchange}): {len(a.bots_stopped)} bot(s) stopped, "
                       f"open orders {a.cancel}{' - ' + a.cancel_detail if a.cancel_detail else ''}, "
                       f"{a.credentials_destroyed} credential(s) destroyed")
        if self.failed_cancels:
            out.append("  some open orders could not be cancelled: cancel them on the exchange yourself")
        out.append("  delete the API keys on the exchanges too: sealbot destroyed only its own copies")
        return out


async def revoke_account(session_factory: sessionmaker[Session], custody: Custody, owner_id: int, account_id: int,
                         *, cancel_open_orders: CancelOpenOrders | None = None, reason: str = "",
                         actor: str | None = None, cancel_timeout: float = 15.0) -> RevocationReport:
    """Revoke one account of ``owner_id`` (another owner's account is simply not found)."""
    with UnitOfWork(session_factory) as uow:
        uow.accounts.get(owner_id, account_id)  # NotFound for someone else's account
    where = (ExchangeAccount.owner_id == owner_id) & (ExchangeAccount.id == account_id)
    return await _revoke(session_factory, custody, f"account:{account_id}", where, cancel_open_orders,
                         reason, actor or f"user:{owner_id}", cancel_timeout, include_revoked=True)


async def revoke_user(session_factory: sessionmaker[Session], custody: Custody, owner_id: int,
                      *, cancel_open_orders: CancelOpenOrders | None = None, reason: str = "",
                      actor: str | None = None, cancel_timeout: float = 15.0) -> RevocationReport:
    """Revoke every account of ``owner_id``."""
    return await _revoke(session_factory, custody, f"user:{owner_id}", ExchangeAccount.owner_id == owner_id,
                         cancel_open_orders, reason, actor or f"user:{owner_id}", cancel_timeout)


async def panic(session_factory: sessionmaker[Session], custody: Custody,
                *, cancel_open_orders: CancelOpenOrders | None = None, reason: str = "panic",
                actor: str = "system", cancel_timeout: float = 15.0) -> RevocationReport:
    """Revoke every account of every user (``sealbot panic``)."""
    return await _revoke(session_factory, custody, "global", sa.true(), cancel_open_orders, reason, actor,
                         cancel_timeout)


async def _revoke(session_factory: sessionmaker[Session], custody: Custody, scope: str,
                  where: sa.ColumnElement[bool], cancel: CancelOpenOrders | None, reason: str, actor: str,
                  timeout: float, *, include_revoked: bool = False) -> RevocationReport:
    refs, stopped = _stop_bots(session_factory, where, reason, include_revoked)
    results = await asyncio.gather(*(_cancel(cancel, ref, timeout) for ref in refs))
    outcomes = []
    for ref, (status, detail) in zip(refs, results, strict=True):
        with UnitOfWork(session_factory) as uow:
            destroyed = custody.destroy(uow, ref.owner_id, ref.account_id).get(ref.account_id, 0)
            uow.accounts.set_status(ref.owner_id, ref.account_id, "revoked")
            bots = stopped.get(ref.account_id, ())
            audit.record(uow.session, actor=actor, action="account.revoked", subject=f"account:{ref.account_id}",
                         details={"owner_id": ref.owner_id, "scope": scope, "reason": reason,
                                  "bots_stopped": list(bots), "open_orders": status, "cancel_detail": detail,
                                  "credentials_destroyed": destroyed})
        outcomes.append(AccountOutcome(ref.owner_id, ref.account_id, ref.exchange, bots, status, detail, destroyed))
    return RevocationReport(scope, reason, tuple(outcomes))


def _stop_bots(session_factory: sessionmaker[Session], where: sa.ColumnElement[bool], reason: str,
               include_revoked: bool) -> tuple[list[AccountRef], dict[int, tuple[int, ...]]]:
    """Select the accounts and stop their bots, committed before anything slow happens."""
    with UnitOfWork(session_factory) as uow:
        live_creds = sa.select(Credential.account_id).where(Credential.destroyed_at.is_(None))
        stmt = sa.select(ExchangeAccount).where(where)
        if not include_revoked:
            stmt = stmt.where((ExchangeAccount.status != "revoked") | ExchangeAccount.id.in_(live_creds))
        accounts: Sequence[ExchangeAccount] = list(uow.session.scalars(stmt.order_by(ExchangeAccount.id)))
        ids = [a.id for a in accounts]
        bots = list(uow.session.execute(
            sa.select(Bot.id, Bot.account_id).where(Bot.account_id.in_(ids), Bot.status.in_(ACTIVE_BOT_STATUSES))
            .order_by(Bot.id)))
        if bots:
            # Revocation wins over any concurrent save: bump the version so a stale
            # engine write fails with Conflict instead of restarting the bot.
            uow.session.execute(
                sa.update(Bot).where(Bot.id.in_([b for b, _ in bots]))
                .values(status="stopped", pause_reason=f"revoked: {reason}"[:500], version=Bot.version + 1)
                .execution_options(synchronize_session=False))
        stopped: dict[int, tuple[int, ...]] = {}
        for bot_id, account_id in bots:
            if account_id is not None:
                stopped[account_id] = (*stopped.get(account_id, ()), bot_id)
        refs = [AccountRef(a.owner_id, a.id, a.exchange, a.is_paper) for a in accounts]
    return refs, stopped


async def _cancel(cancel: CancelOpenOrders | None, ref: AccountRef, timeout: float) -> tuple[CancelStatus, str]:
    if cancel is None:
        return "skipped", "no venue to cancel through"
    try:
        async with asyncio.timeout(timeout):
            result = await cancel(ref)
    except TimeoutError:
        return "timeout", f"exchange did not answer within {timeout:g}s"
    except Exception as exc:  # any failure is reported per account; it must not stop the others
        return "failed", redact(f"{type(exc).__name__}: {exc}")[:300]
    return "ok", "" if result is None else redact(str(result))[:100]


def venue_canceller(signer: Signer, make_venue: Callable[[AccountRef, SigningHandle], Venue] | None = None,
                    ) -> CancelOpenOrders:
    """A ``cancel_open_orders`` that cancels every open order of the account through its
    venue (foreign orders included: an attacker's orders are the ones that matter most).

    ``make_venue`` defaults to a live ccxt venue signing through ``signer``. Paper
    accounts are skipped. Raises when any cancel failed, which revocation reports.
    """
    def default_venue(ref: AccountRef, handle: SigningHandle) -> Venue:
        from sealbot.venues.ccxt_venue import CcxtVenue

        return CcxtVenue(ref.exchange, signer=signer, handle=handle)

    build = make_venue or default_venue

    async def cancel(ref: AccountRef) -> str:
        if ref.is_paper:
            return "paper account: nothing on an exchange"
        handle = signer.handle_for(ref.owner_id, ref.account_id, "revocation: cancel open orders")
        async with build(ref, handle) as venue:
            orders = await venue.fetch_open_orders()
            failed = 0
            for order in orders:
                try:
                    await venue.cancel_order(order.client_id, order.pair)
                except Exception:  # one stuck order must not stop the others; counted and reported
                    failed += 1
        if failed:
            raise RuntimeError(f"{failed} of {len(orders)} open orders could not be cancelled")
        return f"{len(orders)} cancelled"

    return cancel


def run_panic(settings: Settings, *, reason: str = "panic", actor: str = "cli",
              cancel_timeout: float = 15.0) -> RevocationReport:
    """``sealbot panic``: revoke everything, cancelling open orders where the keys still work.

    A KEK that cannot be loaded (missing, wrong mode) does not stop a panic: the
    credentials are destroyed anyway, only the order cancels are skipped (and reported).
    """
    factory = make_session_factory(settings.effective_database_url)
    try:
        keyring: Keyring | None = keyring_from_settings(settings)
    except KekUnavailable:
        keyring = None
    signer: LocalSigner | SocketSigner | None = None
    if str(settings.signer.value) == "socket":
        signer = socket_signer(settings.effective_signer_socket)
    elif keyring is not None:
        signer = local_signer(settings, keyring)
    custody = Custody(keyring, signer)
    cancel = venue_canceller(signer) if signer is not None else None
    return asyncio.run(panic(factory, custody, cancel_open_orders=cancel, reason=reason, actor=actor,
                             cancel_timeout=cancel_timeout))
