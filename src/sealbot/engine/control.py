"""Kill switch and panic sell across accounts: per bot, per account, per user, global.

Mixed into ``InProcessRunner``: a decision is written to the journal first (so it holds
after a restart and in the web process), then applied to the running account, whose
open orders are cancelled. A kill journals the bots' stop and the cancel of their
orders not yet final (``CANCEL_REQUESTED``, the order manager's durable cancel) in one
transaction, so a cancel that fails or dies with the process is sent again by the
account's next poll, in this process or the next one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealbot.domain import CloseAtMarket
from sealbot.domain.evolve import evolve
from sealbot.engine.clock import Clock
from sealbot.engine.journal import BotStatus, Journal
from sealbot.engine.orders import OrderManager

if TYPE_CHECKING:
    from sealbot.engine.runner import AccountRunner


class KillSwitch:
    """The operator's brakes, over whatever accounts ``accounts`` holds."""

    journal: Journal
    clock: Clock
    accounts: dict[str, AccountRunner]

    def _scope(self, *, bot: str | None, account: str | None, user: str | None) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        with self.journal.transaction() as tx:
            for acc in self.journal.accounts():
                if account is not None and acc.id != account:
                    continue
                if user is not None and acc.user != user:
                    continue
                ids = [b.id for b in tx.bots(acc.id) if bot is None or b.id == bot]
                if ids:
                    found[acc.id] = ids
        return found

    def _store_status(self, ids: list[str], status: str, reason: str) -> None:
        """For an account not running here: the journal alone (it starts with this status)."""
        with self.journal.transaction() as tx:
            for bot_id in ids:
                record = tx.get_bot(bot_id)
                if record is not None:
                    tx.save_bot(evolve(record, status=status, status_reason=reason))

    def _store_kill(self, account_id: str, ids: list[str], reason: str) -> None:
        """The bots stopped and their orders' cancel requested, in one transaction."""
        with self.journal.transaction() as tx:
            for bot_id in ids:
                record = tx.get_bot(bot_id)
                if record is not None:
                    tx.save_bot(evolve(record, status=BotStatus.STOPPED, status_reason=reason))
            for entry in tx.open_orders(account_id):
                if entry.bot in ids:
                    OrderManager.request_cancel(tx, entry.order.client_id)

    async def kill(self, *, bot: str | None = None, account: str | None = None, user: str | None = None,
                   reason: str = "kill switch", cancel_orders: bool = True) -> int:
        """Stop the bots in scope (one bot, an account, a user, or all when nothing is
        named) and cancel their open orders (durably: see the module docstring).
        Returns how many bots were stopped."""
        scope = self._scope(bot=bot, account=account, user=user)
        stopped = 0
        for account_id, ids in scope.items():
            if cancel_orders:
                self._store_kill(account_id, ids, reason)
            runner = self.accounts.get(account_id)
            if runner is None:
                if not cancel_orders:
                    self._store_status(ids, BotStatus.STOPPED, reason)
            else:
                runner.set_status(ids, BotStatus.STOPPED, reason)  # the bots in memory (the journal has it)
                if cancel_orders:
                    await runner.cancel_open_orders(ids)
            stopped += len(ids)
        return stopped

    async def pause_account(self, account_id: str, reason: str) -> list[str]:
        ids = self._scope(bot=None, account=account_id, user=None).get(account_id, [])
        runner = self.accounts.get(account_id)
        if runner is not None:
            runner.set_status(ids, BotStatus.PAUSED, reason)
        else:
            self._store_status(ids, BotStatus.PAUSED, reason)
        return ids

    def resume(self, account_id: str, bot_ids: list[str]) -> None:
        self.accounts[account_id].set_status(bot_ids, BotStatus.RUNNING, "resumed")

    async def panic_sell(self, account_id: str, bot_id: str, deal_no: int) -> int:
        """Close one deal at market now, whatever the bot's status (the guard's spend
        limits never hold back a closing order)."""
        runner = self.accounts[account_id]
        return await runner.deliver(bot_id, CloseAtMarket(deal_no, self.clock.now()))


__all__ = ["KillSwitch"]
