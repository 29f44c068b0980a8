"""A stored bot that no longer loads (its config outside a bound added since it was
saved, a state this version cannot read) is set aside with its reason and an alert;
the account starts and its other bots run."""

from __future__ import annotations

from typing import Any

from sealbot.domain import DealStatus
from sealbot.engine.journal import BotRecord, BotStatus, MemoryJournal

from .test_engine_runner import ACCOUNT, dca_config, setup, started, step_market


def add_bot(journal: MemoryJournal, bot_id: str, config: dict[str, Any], state: dict[str, Any] | None = None,
            status: str = BotStatus.RUNNING) -> None:
    with journal.transaction() as tx:
        tx.save_bot(BotRecord(bot_id, "alice", ACCOUNT.id, "dca", config, state, status))


async def test_a_bot_whose_stored_config_is_now_out_of_bounds_is_set_aside_and_the_others_trade() -> None:
    journal, venue, clock = setup()  # bot 7: valid
    add_bot(journal, "8", dca_config("8", base_order_volume="1e400"))  # saved before amounts were bounded
    add_bot(journal, "9", dca_config("9"), state={"next_deal": "abc"})  # a state this version cannot read
    alerts: list[Any] = []
    runner, acc = await started(journal, venue, clock, alerts=alerts)
    assert set(acc.bots) == {"7"}
    with journal.transaction() as tx:
        eight, nine = tx.get_bot("8"), tx.get_bot("9")
    assert eight is not None and eight.status == BotStatus.ERROR
    assert eight.status_reason is not None and "base_order_volume" in eight.status_reason
    assert nine is not None and nine.status == BotStatus.ERROR and "state" in (nine.status_reason or "")
    assert sorted((a.code, a.bot) for a in alerts) == [("bot.unloadable", "8"), ("bot.unloadable", "9")]
    await step_market(runner, acc, venue, 1, "20000")  # the valid bot trades
    assert [d.status for d in journal.data.deals.values() if d.bot == "7"] == [DealStatus.OPEN]


async def test_resuming_a_bot_that_does_not_load_sets_it_aside_instead_of_failing() -> None:
    journal, venue, clock = setup()
    add_bot(journal, "8", dca_config("8", base_order_volume="1e400"), status=BotStatus.STOPPED)
    _runner, acc = await started(journal, venue, clock)
    acc.set_status(["8"], BotStatus.RUNNING, "resumed by the user")
    with journal.transaction() as tx:
        eight = tx.get_bot("8")
    assert eight is not None and eight.status == BotStatus.ERROR
    assert "8" not in acc.bots and "7" in acc.bots
    assert [a.code for a in journal.data.alerts] == ["bot.unloadable"]
