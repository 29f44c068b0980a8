"""The watchdog's permission baseline survives a restart: a key changed while sealbot
was down (withdrawals enabled, IP restriction removed) is caught on the first pass of a
new process, and every pass records when it looked (shown as the key's last check)."""

from __future__ import annotations

from sealbot.domain.evolve import evolve
from sealbot.engine.journal import AccountRecord
from sealbot.engine.watchdog import Watchdog
from sealbot.venues.base import PermissionReport, Venue, Verdict

from .test_engine_runner import ACCOUNT, setup


async def test_drift_while_down_is_caught_on_the_first_pass_after_a_restart() -> None:
    journal, venue, clock = setup()
    paused: list[str] = []

    async def venue_for(_account: AccountRecord) -> Venue:
        return venue

    async def pause(account: str, _reason: str) -> list[str]:
        paused.append(account)
        return []

    first = Watchdog(journal, venue_for, pause, clock=clock)
    assert await first.check(ACCOUNT) == []
    stored = journal.data.permissions[ACCOUNT.id]
    assert stored == (venue.permission_report.to_dict(), clock.now())
    assert PermissionReport.from_dict(stored[0]) == venue.permission_report

    # sealbot is down; the attacker enables withdrawals on the exchange
    venue.permission_report = evolve(venue.permission_report, can_withdraw=True, verdict=Verdict.REFUSED)
    restarted = Watchdog(journal, venue_for, pause, clock=clock)  # a new process: nothing in memory
    drift = await restarted.check(ACCOUNT)
    assert [f.kind for f in drift] == ["permission_drift"] and "withdrawals were enabled" in drift[0].detail
    assert paused == [ACCOUNT.id]
    assert journal.data.permissions[ACCOUNT.id][0]["can_withdraw"] is True


async def test_without_any_stored_report_the_first_pass_is_the_baseline() -> None:
    journal, venue, clock = setup()

    async def venue_for(_account: AccountRecord) -> Venue:
        return venue

    async def pause(_account: str, _reason: str) -> list[str]:
        return []

    venue.permission_report = evolve(venue.permission_report, ip_restricted=False)
    assert await Watchdog(journal, venue_for, pause, clock=clock).check(ACCOUNT) == []
    assert journal.data.permissions[ACCOUNT.id][0]["ip_restricted"] is False
