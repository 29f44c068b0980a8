"""sealbot.engine: runs bots live and on paper (see docs/engine.md).

Entry points: ``Engine`` (everything in one process), ``InProcessRunner`` (the
``Runner`` seam), ``StoreJournal``, ``GuardPolicy``/``GuardLimits``, ``Watchdog``,
``Notifier`` and its channels.
"""

from sealbot.engine.app import Engine, EngineOptions
from sealbot.engine.guard import GuardDecision, GuardLimits, GuardPolicy
from sealbot.engine.notify import EmailChannel, Notifier, TelegramChannel, WebhookChannel, verify_webhook
from sealbot.engine.runner import InProcessRunner, Runner, RunnerSettings
from sealbot.engine.store_journal import StoreJournal
from sealbot.engine.watchdog import Watchdog, WatchdogPolicy

__all__ = [
    "EmailChannel", "Engine", "EngineOptions", "GuardDecision", "GuardLimits", "GuardPolicy", "InProcessRunner",
    "Notifier", "Runner", "RunnerSettings", "StoreJournal", "TelegramChannel", "Watchdog", "WatchdogPolicy",
    "WebhookChannel", "verify_webhook",
]
