"""How the hub's candles and the account's events reach its bots: one queue, held bots.

Mixed into ``AccountRunner`` (as ``steps.StepWriter`` is). The ``FeedHub`` calls
``_sink`` only for bots whose indexed ``Interest`` a candle can wake; the bots one
candle woke on this account become one ``CandleBatch`` queue item (they step and
commit together). While anything is queued for a bot its indexed interest may be
stale, so the bot is *held* awake in the hub until its items are processed: every
candle then reaches it, and ``wakes`` judges it when its turn comes, against the
interest it has then. Nothing here does I/O.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sealbot.domain import CandleClosed, Event, Fill, IndicatorUpdated, Order, PriceTicked, TimerFired
from sealbot.engine.candles import FeedHub
from sealbot.engine.live import LiveBot, wakes
from sealbot.engine.orders import Observation, Rejection

MARKET_EVENTS = (CandleClosed, PriceTicked, IndicatorUpdated, TimerFired)
OBSERVATIONS = (Fill, Order, Rejection)


@dataclass
class CandleBatch:
    """One candle for every bot of this account it woke: they step in one transaction."""

    event: CandleClosed
    bots: list[str]


QueueItem = tuple[str | None, Event | Observation | CandleBatch]


def bot_of(item: Event | Observation) -> str | None:
    """The bot an observation's order belongs to (its client order id names it)."""
    client_id = getattr(item, "client_id", None)
    return client_id.bot if isinstance(item, OBSERVATIONS) and client_id is not None else None


class HubDelivery:
    """The account's side of the hub: what it delivers, the queue, the held bots."""

    bots: dict[str, LiveBot]
    queue: asyncio.Queue[QueueItem]
    hub: FeedHub
    feed: str
    _batch: CandleBatch | None  # the candle batch still taking bots (last queued)
    _queued: dict[str, int]  # bot -> items queued for it (held awake in the hub meanwhile)

    def _sink(self, ident: str, event: Event) -> None:
        """The hub's delivery: only candles the bot's indexed interest reaches come here."""
        bot_id = ident.split(":", 1)[1]
        if isinstance(event, CandleClosed):
            batch = self._batch
            if batch is not None and batch.event is event:
                batch.bots.append(bot_id)  # the same candle for the next bot it woke here
                self._hold(bot_id)
                return
            if self._current(bot_id):
                # Nothing queued ahead: the bot's interest is current, so a candle it
                # cannot act on is dropped here instead of taking a trip through the queue.
                live = self.bots.get(bot_id)
                if live is None or not live.running or not wakes(live.interest, event):
                    return
            self._batch = CandleBatch(event, [bot_id])
            self._hold(bot_id)
            self.queue.put_nowait((None, self._batch))
            return
        if isinstance(event, MARKET_EVENTS) and self._current(bot_id):
            live = self.bots.get(bot_id)
            if live is None or not live.running or not wakes(live.interest, event):
                return
        self._enqueue(bot_id, event)

    def _current(self, bot_id: str) -> bool:
        """The bot's ``interest`` is the one its next event will be judged by: nothing is
        queued, and the bot is not in the middle of a step (held: see ``_hold``)."""
        return self.queue.empty() and bot_id not in self._queued

    def _enqueue(self, bot_id: str | None, item: Event | Observation) -> None:
        """Queue one event (for ``bot_id``) or observation (for the bot its order names)."""
        self._batch = None  # a candle arriving after this must not overtake it
        self._hold(bot_id if bot_id is not None else bot_of(item))
        self.queue.put_nowait((bot_id, item))

    def _hold(self, bot_id: str | None) -> None:
        """An item is queued for the bot: until it is processed, the interest indexed in
        the hub may be stale, so every candle reaches the bot (and ``wakes`` decides
        when the candle's turn comes, against the interest it has then)."""
        if bot_id is None:
            return
        count = self._queued.get(bot_id, 0)
        self._queued[bot_id] = count + 1
        if count == 0 and (live := self.bots.get(bot_id)) is not None:
            for pair in live.pairs:
                self.hub.hold_awake(self.feed, pair, live.feed_id, True)

    def _release(self, bot_id: str | None) -> None:
        count = self._queued.get(bot_id, 0) if bot_id is not None else 0
        if count > 1:
            self._queued[bot_id] = count - 1  # type: ignore[index]
            return
        if count == 1:
            del self._queued[bot_id]  # type: ignore[arg-type]
            if (live := self.bots.get(bot_id)) is not None:  # type: ignore[arg-type]
                for pair in live.pairs:
                    self.hub.hold_awake(self.feed, pair, live.feed_id, False)

    def _index(self, live: LiveBot) -> None:
        """Tell the hub what wakes the bot now."""
        for pair in live.pairs:
            self.hub.set_interest(self.feed, pair, live.feed_id, live.interest)


__all__ = ["MARKET_EVENTS", "OBSERVATIONS", "CandleBatch", "HubDelivery", "QueueItem", "bot_of"]
