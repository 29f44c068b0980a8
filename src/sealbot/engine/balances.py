"""Balances stepped into a bot before a signal: what a %-of-balance size is taken from.

The backtester models the same ``BalanceReported`` events, so a signal bot sizes its
order alike on paper, live and in a backtest.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from sealbot.domain import BalanceReported
from sealbot.domain.money import ZERO
from sealbot.engine.live import LiveBot
from sealbot.venues.errors import VenueError

if TYPE_CHECKING:
    from sealbot.engine.runner import AccountRunner

log = logging.getLogger("sealbot.engine.runner")


async def report_balances(runner: AccountRunner, live: LiveBot, at: datetime) -> int:
    """Step the free balance of each of the bot's assets into it; returns the commands
    those steps produced. An exchange that does not answer leaves the bot with what it
    last heard."""
    try:
        balances = await runner.venue.fetch_balances()
    except VenueError as exc:
        log.warning("account %s: balances for bot %s not fetched (%s)", runner.account.id, live.id, exc)
        return 0
    commands = 0
    for asset in sorted({a for pair in live.pairs for a in (pair.base, pair.quote)}):
        held = balances.get(asset)
        report = BalanceReported(asset, held.free if held is not None else ZERO, at)
        with runner.journal.transaction() as tx:
            state, outcome = runner._step(tx, live, report)
        commands += await runner._after_commit(live, state, outcome, report)
    return commands
