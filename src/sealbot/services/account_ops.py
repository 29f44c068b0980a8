"""Account use cases the web tier needs beyond ``accounts``: one account's view and
revocation from the dashboard (stop bots, cancel open orders, destroy the sealed key)."""

from __future__ import annotations

from collections.abc import Iterable

from sealbot.custody.secrets import ApiCredentials
from sealbot.custody.signer import SigningHandle
from sealbot.domain.errors import NotFound
from sealbot.services.accounts import AccountView, check_pasted_key, link_account, list_accounts
from sealbot.services.platform import Platform
from sealbot.services.revocation import AccountRef, RevocationReport, revoke_account, venue_canceller
from sealbot.venues.base import Venue
from sealbot.venues.ccxt_venue import CcxtVenue


def get_account(platform: Platform, owner_id: int, account_id: int) -> AccountView:
    for view in list_accounts(platform, owner_id):
        if view.id == account_id:
            return view
    raise NotFound("account", account_id)


async def revoke(platform: Platform, owner_id: int, account_id: int, reason: str = "revoked by its owner",
                 ) -> RevocationReport:
    """Revoke one of the owner's accounts; another user's account is NotFound."""

    def make_venue(ref: AccountRef, handle: SigningHandle) -> Venue:
        return CcxtVenue(ref.exchange, signer=platform.signer, handle=handle, urls=platform.urls_for(ref.exchange))

    return await revoke_account(platform.session_factory, platform.custody, owner_id, account_id,
                                cancel_open_orders=venue_canceller(platform.signer, make_venue), reason=reason,
                                actor=f"user:{owner_id}")


async def link(platform: Platform, owner_id: int, exchange: str, label: str, api_key: str, api_secret: str,
               passphrase: str | None = None, allowed_pairs: Iterable[str] | None = None) -> AccountView:
    """Wrap the pasted key in custody's secret type at once and link it (check, then seal);
    a malformed key is ``InvalidConfig`` naming the field, and nothing is stored."""
    check_pasted_key(exchange, api_key, api_secret, passphrase)
    return await link_account(platform, owner_id, exchange, label, ApiCredentials(api_key, api_secret, passphrase),
                              allowed_pairs=allowed_pairs)
