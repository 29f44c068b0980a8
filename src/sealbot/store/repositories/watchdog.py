"""What the watchdog flagged on each account, so no process flags it twice.

The engine's watchdog looks only among the ids it just fetched from the exchange
(``flagged``: one indexed query on the unique (account, ref) key, never the account's
whole history), and records new ones in the transaction of the alert they raised
(``add``). An id flagged already (another process's commit racing this one) is left
as it is rather than raising.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa

from sealbot.store.models import WatchdogFlag
from sealbot.store.repositories._base import Repository

_CHUNK = 500  # ids per query: well under SQLite's bound-parameter limit


class WatchdogFlags(Repository):
    def flagged(self, account_id: int, refs: Collection[str]) -> set[str]:
        """Those of ``refs`` already flagged on the account."""
        wanted = sorted(set(refs))
        found: set[str] = set()
        for start in range(0, len(wanted), _CHUNK):
            found.update(self.session.scalars(sa.select(WatchdogFlag.ref).where(
                WatchdogFlag.account_id == account_id, WatchdogFlag.ref.in_(wanted[start:start + _CHUNK]))))
        return found

    def add(self, owner_id: int, account_id: int, refs: Collection[str], alert_id: int | None,
            at: datetime) -> None:
        for ref in sorted(set(refs)):
            self._insert_if_new(WatchdogFlag, {"owner_id": owner_id, "account_id": account_id, "ref": ref,
                                               "alert_id": alert_id, "flagged_at": at}, ("account_id", "ref"))
