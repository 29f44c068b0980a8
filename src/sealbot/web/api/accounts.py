"""Exchange accounts: link (permission check, then seal), list, read, revoke. Linking
and revoking need 2FA."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from sealbot.services import account_ops
from sealbot.services.accounts import list_accounts
from sealbot.services.auth import Principal, require_second_factor
from sealbot.services.paging import page_of
from sealbot.services.platform import Platform
from sealbot.web.api.common import IdPath, Limit, Offset, paged
from sealbot.web.deps import get_platform, scoped
from sealbot.web.schemas import AccountLinkIn, AccountOut, PageOut, RevocationOut

router = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])


@router.get("", response_model=PageOut[AccountOut])
def accounts(status_: Annotated[str | None, Query(alias="status", max_length=16)] = None,
             exchange: Annotated[str | None, Query(max_length=40)] = None, limit: Limit = 50, offset: Offset = 0,
             who: Principal = Depends(scoped("accounts:read")),
             platform: Platform = Depends(get_platform)) -> PageOut[AccountOut]:
    views = [a for a in list_accounts(platform, who.user_id)
             if (status_ is None or a.status == status_) and (exchange is None or a.exchange == exchange)]
    return paged(page_of(views, limit, offset), AccountOut)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AccountOut)
async def link(body: AccountLinkIn, who: Principal = Depends(scoped("accounts:write")),
               platform: Platform = Depends(get_platform)) -> AccountOut:
    """Check the key's permissions with the exchange and seal it; a key that can withdraw
    (or, under the strict policy, has no IP restriction) is refused with 403 and nothing
    is stored. The answer carries the check's result, never the key."""
    require_second_factor(who)
    view = await account_ops.link(platform, who.user_id, body.exchange, body.label,
                                  body.api_key.get_secret_value(), body.api_secret.get_secret_value(),
                                  body.passphrase.get_secret_value() if body.passphrase else None,
                                  body.allowed_pairs)
    return AccountOut.model_validate(view)


@router.get("/{account_id}", response_model=AccountOut)
def account(account_id: IdPath, who: Principal = Depends(scoped("accounts:read")),
            platform: Platform = Depends(get_platform)) -> AccountOut:
    return AccountOut.model_validate(account_ops.get_account(platform, who.user_id, account_id))


@router.delete("/{account_id}", response_model=RevocationOut)
async def revoke(account_id: IdPath, who: Principal = Depends(scoped("accounts:write")),
                 platform: Platform = Depends(get_platform)) -> RevocationOut:
    """Revoke: stop the account's bots, cancel its open orders, destroy the sealed key.
    (Disable the key at the exchange too: sealbot cannot do that for you.)"""
    require_second_factor(who)
    report = await account_ops.revoke(platform, who.user_id, account_id)
    return RevocationOut(scope=report.scope, reason=report.reason, lines=report.lines())
