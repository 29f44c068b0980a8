"""The in-process runner: one exchange account with its bots is the unit of work.

For each account the runner keeps an ``AccountRunner``: it loads the account's bots
(config + state) from the journal, reconciles the account with the exchange *before*
any bot acts, then feeds events one at a time through a single queue (so a bot's state
changes in exactly one place), and carries out the commands (``engine.steps`` writes
them down):

* ``PlaceOrder``: checked by the guard, journalled as pending in the same transaction as
  the bot's new state, then sent by the order manager. A refusal is journalled with its
  reason, the bot is paused and an alert is raised.
* ``CancelOrder``, ``RaiseAlert``, ``StopBot``, ``DealChanged``: cancelled through the
  manager, stored as alerts, a bot status, deal rows.

Candles reach only the bots they can wake: each bot's ``Interest`` is indexed in the
``FeedHub`` (``engine.triggers``) and re-indexed after every step; accounts share a
candle stream only on the same venue endpoint (``engine.candles.feed_key``). The bots of one
account woken by one candle are one queue item: they step, their states and order
intents commit in one transaction (group commit), then the orders go out.

Everything a restart needs is in the journal; nothing lives only in memory. The seam
to a distributed runner is the ``Runner`` protocol (``start_account``/``stop_account``):
a worker consuming one queue per account partition would call exactly these. The kill
switch and panic sell across accounts live in ``engine.control``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sealbot.bots.registry import bot_module, parse_config
from sealbot.domain import (
    AlertLevel,
    CandleClosed,
    Command,
    Event,
    Pair,
    SignalReceived,
    TimerFired,
)
from sealbot.domain.errors import InvalidConfig
from sealbot.domain.evolve import evolve
from sealbot.engine.balances import report_balances
from sealbot.engine.budget import Budgets
from sealbot.engine.budgeted import BudgetedVenue
from sealbot.engine.candles import FeedHub, feed_key
from sealbot.engine.clock import Clock, SystemClock
from sealbot.engine.control import KillSwitch
from sealbot.engine.delivery import MARKET_EVENTS, OBSERVATIONS, CandleBatch, HubDelivery, QueueItem, bot_of
from sealbot.engine.feed_sources import FeedSources
from sealbot.engine.guard import GuardPolicy
from sealbot.engine.heap import QuietCollector
from sealbot.engine.journal import AccountRecord, AlertRecord, BotRecord, BotStatus, Journal, JournalTx
from sealbot.engine.live import LiveBot, bot_indicators, bot_pairs, wakes
from sealbot.engine.market import MarketData, ReferencePrices
from sealbot.engine.orders import Observation, OrderManager
from sealbot.engine.steps import Outcome, StepWriter
from sealbot.engine.stream_pool import StreamLimits, StreamPool
from sealbot.engine.user_stream import UserStreamWatcher, user_stream_for
from sealbot.venues.base import Venue
from sealbot.venues.errors import ExchangeUnavailable, VenueError

log = logging.getLogger(__name__)

VenueFactory = Callable[[AccountRecord], Awaitable[Venue]]
AlertSink = Callable[[AlertRecord], Awaitable[None]]


class Runner(Protocol):
    """The narrow seam between the engine and whatever decides where accounts run."""

    async def start_account(self, account_id: str) -> None: ...

    async def stop_account(self, account_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    poll_interval: float = 2.0  # seconds between fill/status polls per account
    # the exchange's user-data stream rings the poller at each order event (engine.user_stream)
    user_stream: bool = True
    user_stream_retry_max: float = 60.0  # seconds: longest wait between two tries of a dropped stream
    market_ttl: float = 30.0  # seconds a guard reference price stays fresh (one fetch per venue and pair)
    market_max_age: float | None = None  # seconds after which it is stale: refused (None: 4 x ttl, >= 60)
    feed_interval: float = 5.0  # seconds between candle polls per (venue endpoint, pair)
    # candles over the exchange's websocket where ccxt.pro offers it (engine.streaming), polling otherwise
    stream_feeds: bool = True
    stream_retry_max: float = 300.0  # seconds: longest wait between two tries of a failed stream
    # the exchange's websocket limits the streams share connections within (engine.stream_pool)
    stream_limits: StreamLimits = field(default_factory=StreamLimits)
    base_timeframe: str = "1m"
    bot_timeframe: str = "1m"
    # False when a replay (by exchange name) or the ingestor (by venue: FeedHub.by_venue) feeds the hub
    poll_feeds: bool = True
    background: bool = True  # False: no worker/poller tasks; the caller drives poll_once() and drain()
    egress_ip: str = "default"  # accounts behind the same IP share one request-weight budget
    resend_window: float = 300.0  # seconds (engine clock) a journalled, never-sent order may still be sent
    # wall-clock seconds an unanswered order may still execute, for venues that cannot pin its signing time
    # (on Binance/KuCoin it is derived: their receive window + 2 s, see engine.orders)
    in_flight_window: float = 15.0
    quiet_gc: bool = False  # full garbage collections only while every account is idle (engine.heap)


class AccountRunner(StepWriter, HubDelivery):
    """One account: its bots, its order manager, one event queue, one worker."""

    def __init__(self, account: AccountRecord, venue: Venue, journal: Journal, *, guard: GuardPolicy,
                 hub: FeedHub, clock: Clock, settings: RunnerSettings, budgets: Budgets | None = None,
                 alert_sink: AlertSink | None = None, prices: ReferencePrices | None = None,
                 streams: StreamPool | None = None) -> None:
        self.account, self.venue, self.journal, self.guard, self.hub = account, venue, journal, guard, hub
        self.streams = streams  # the process's websocket dials are counted there (the exchange's per-IP limit)
        self.clock, self.settings, self.alert_sink = clock, settings, alert_sink
        self.orders = OrderManager(account, venue, journal, clock=clock, resend_window=settings.resend_window,
                                   in_flight_window=settings.in_flight_window,
                                   budget=budgets.for_account(account.id) if budgets else None)
        prices = prices or ReferencePrices(clock, ttl=settings.market_ttl, max_age=settings.market_max_age)
        self.market = MarketData(venue, prices=prices, exchange=account.exchange)  # shared per venue
        self.feed = feed_key(account.exchange, venue, by_venue=settings.poll_feeds or hub.by_venue)  # stream key
        self.bots: dict[str, LiveBot] = {}
        self.queue: asyncio.Queue[QueueItem] = asyncio.Queue()
        self.ready = asyncio.Event()
        self.needs_reconcile = True
        self.steps = 0
        self.on_commands: Callable[[str, Event, int], None] | None = None  # bench/metrics hook
        self.on_idle: Callable[[], None] | None = None  # the worker emptied the queue
        self._tasks: list[asyncio.Task[None]] = []
        self._poll_now = asyncio.Event()
        self.user_stream: UserStreamWatcher | None = None  # rings _poll_now at each order event
        self._batch: CandleBatch | None = None  # the candle batch still taking bots (last queued)
        self._queued: dict[str, int] = {}  # bot -> items queued for it (held awake in the hub meanwhile)
        self.unlisted: set[Pair] = set()  # pairs the exchange's metadata does not list: never waited for

    # -- lifecycle -------------------------------------------------------------------
    def load_bots(self) -> list[AlertRecord]:
        """Load the account's running and paused bots. One that no longer loads (a stored
        config outside a bound added since it was saved, a state this version cannot
        read) is set to ``error`` with the reason and an alert, and the others run: one
        bad row must not keep the account from starting. The alerts, to be sent."""
        with self.journal.transaction() as tx:
            records = tx.bots(self.account.id)
            alerts = [self._set_aside(tx, record, why) for record in records
                      if record.status in (BotStatus.RUNNING, BotStatus.PAUSED)
                      and (why := self._try_load(record)) is not None]
        return alerts

    def _try_load(self, record: BotRecord) -> str | None:
        """Load the bot: None, or why it does not load, in one line for its owner."""
        try:
            self._load(record)
            return None
        except InvalidConfig as exc:
            return f"its config is no longer valid: {exc}"
        except Exception as exc:  # any bot's config or state: set aside, not fatal to its account
            log.warning("account %s: bot %s does not load", self.account.id, record.id, exc_info=True)
            return f"its config or stored state does not load ({type(exc).__name__})"

    def _set_aside(self, tx: JournalTx, record: BotRecord, why: str) -> AlertRecord:
        """A bot that cannot be loaded: ``error`` with the reason, and a critical alert."""
        reason = f"cannot be loaded: {why}"
        tx.save_bot(evolve(record, status=BotStatus.ERROR, status_reason=reason))
        return tx.add_alert(AlertRecord(record.user, AlertLevel.CRITICAL, "bot.unloadable",
                                        f"bot {record.id} {reason}; fix its config and start it again",
                                        self.clock.now(), self.account.id, record.id))

    def _load(self, record: BotRecord) -> LiveBot:
        module = bot_module(record.kind)
        config = parse_config(record.kind, record.config)
        state = module.load_state(record.state) if record.state else module.initial_state(config)
        live = LiveBot(record, module, config, state, bot_pairs(config), feed_id=f"{self.account.id}:{record.id}")
        live.interest = module.interest(config, state)
        self.bots[record.id] = live
        return live

    async def start(self) -> None:
        for alert in self.load_bots():
            await self._send_alert(alert)
        await self.market.refresh({p for b in self.bots.values() for p in b.pairs})  # shared: fresh is enough
        try:
            await self.reconcile()
        except VenueError as exc:  # the bots wait: the worker reconciles before any event
            log.warning("account %s: reconcile failed (%s); retrying before the next event", self.account.id, exc)
        for live in self.bots.values():
            self._subscribe(live)
        if not self.settings.background:
            return
        self._tasks = [asyncio.create_task(self._worker(), name=f"account {self.account.id} worker"),
                       asyncio.create_task(self._poller(), name=f"account {self.account.id} poller")]
        if self.settings.user_stream:
            self.user_stream = user_stream_for(self.account.id, self.venue, self._poll_now.set,
                                               retry_max=self.settings.user_stream_retry_max,
                                               dial=self.streams.count_dial if self.streams else None)
        if self.user_stream is not None:
            self._tasks.append(asyncio.create_task(self.user_stream.run(), name=f"account {self.account.id} stream"))

    async def stop(self) -> None:
        for live in self.bots.values():
            self._unsubscribe(live)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def _subscribe(self, live: LiveBot) -> None:
        for pair in live.pairs:
            self.hub.subscribe(self.feed, pair, live.feed_id,
                               getattr(live.config, "timeframe", None) or self.settings.bot_timeframe,
                               self._sink, bot_indicators(live.config), interest=live.interest)
            if live.id in self._queued:
                self.hub.hold_awake(self.feed, pair, live.feed_id, True)

    def _unsubscribe(self, live: LiveBot) -> None:
        for pair in live.pairs:
            self.hub.unsubscribe(self.feed, pair, live.feed_id)

    async def reconcile(self) -> None:
        """Match the journal with the exchange; bots act only once this succeeded, and
        once the guard has a reference price for every pair they trade: a start whose
        first ticker fetch failed would otherwise have the guard refuse the first order
        (a deal's exit too) as unjudgeable and pause its bot over a passing fault.

        A pair the exchange does not list will never have a price: waiting for it would
        hold every bot of the account forever. The bots trading it are paused with an
        alert instead (``_pause_unlisted``), and the others go on."""
        self.ready.clear()
        self.orders.unsettled = False
        pairs = self._required_pairs()
        await self.market.refresh({p for p in pairs if self.market.snapshot(p).reference_price is None}, force=True)
        unknown = {p for p in pairs if self.market.snapshot(p).reference_price is None}
        if unknown:
            unknown -= await self._pause_unlisted(unknown)
        if unknown:
            missing = ", ".join(sorted(str(p) for p in unknown))
            raise ExchangeUnavailable(self.venue.name, f"no reference price for {missing} yet")
        observations = await self.orders.reconcile()
        for obs in observations:
            await self._observe(obs)
        # an order whose fate is still unknown keeps the account reconciling
        self.needs_reconcile, self.orders.unsettled = self.orders.unsettled, False
        if not self.needs_reconcile:
            self.ready.set()

    def _required_pairs(self) -> set[Pair]:
        """The pairs the loaded bots trade, but those the exchange is known not to list."""
        return {p for b in self.bots.values() for p in b.pairs} - self.unlisted

    async def _pause_unlisted(self, unpriced: set[Pair]) -> set[Pair]:
        """Of ``unpriced``, the pairs the exchange's market metadata does not list: every
        running bot trading one is paused, with an alert naming it. A venue that cannot
        answer, or lists nothing at all, proves nothing: those pairs stay unknown and
        the account waits for them as for a passing fault."""
        try:
            listed = await self.venue.load_markets()
        except VenueError as exc:
            log.warning("account %s: market metadata unavailable (%s)", self.account.id, exc)
            return set()
        unlisted = {p for p in unpriced if listed and p not in listed}
        self.unlisted |= unlisted
        for live in list(self.bots.values()):
            gone = sorted(str(p) for p in live.pairs if p in unlisted)
            if not gone or not live.running:
                continue
            reason = f"{self.venue.name} does not list {', '.join(gone)}: fix the bot's markets"
            log.warning("account %s: bot %s paused: %s", self.account.id, live.id, reason)
            self.set_status([live.id], BotStatus.PAUSED, reason)
            await self.raise_alert(live.record.user, AlertLevel.CRITICAL, "market.unlisted",
                                   f"bot {live.id} paused: {reason}", bot=live.id)
        return unlisted

    def unload(self, bot_id: str) -> None:
        """Forget a bot the user stopped or deleted: it leaves the hub, and its pairs are
        no longer waited for (a restart would not load it either)."""
        live = self.bots.pop(bot_id, None)
        if live is None:
            return
        self._unsubscribe(live)
        self._queued.pop(bot_id, None)

    # -- the loop ----------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            bot_id, item = await self.queue.get()
            try:
                await self._process(bot_id, item)
            except Exception:  # logged with its traceback; the account reconciles before acting again
                log.exception("account %s: step failed; reconciling before the next event", self.account.id)
                self.needs_reconcile = True
            if self.on_idle is not None and self.queue.empty():
                self.on_idle()

    async def _poller(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
            # lands just after poll_now woke it, and stop() then awaited the poller forever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_interval):
                    await self._poll_now.wait()
            self._poll_now.clear()
            try:
                await self.poll_once()
            except Exception:  # logged; the next poll retries and the worker reconciles
                log.exception("account %s: poll failed", self.account.id)
                self.needs_reconcile = True

    @property
    def poll_due(self) -> bool:
        """A market order went out since the last poll: its fill is waiting to be fetched."""
        return self._poll_now.is_set()

    async def poll_once(self) -> None:
        self._poll_now.clear()
        if self.needs_reconcile:
            self._enqueue(None, TimerFired(self.clock.now()))  # wakes the worker to reconcile
            return
        pairs = self._required_pairs()
        await self.market.refresh(pairs)
        if any(self.market.snapshot(p).reference_price is None for p in pairs):
            # a price went stale (its refreshes kept failing): the bots wait, reconciling,
            # for a fresh one rather than have the guard refuse their orders and pause them
            self.needs_reconcile = True
        for obs in await self.orders.poll():
            self._enqueue(None, obs)
        now = self.clock.now()
        for live in self.bots.values():
            if live.running and live.interest.until is not None and live.interest.until <= now:
                self._enqueue(live.id, TimerFired(now))

    async def drain(self) -> None:
        """Process everything queued so far (tests, the benchmark, a clean stop)."""
        while not self.queue.empty():
            bot_id, item = self.queue.get_nowait()
            await self._process(bot_id, item)

    async def _process(self, bot_id: str | None, item: Event | Observation | CandleBatch) -> None:
        """One queued item; an account that must reconcile does so before anything acts."""
        if item is self._batch:
            self._batch = None  # taken: a later candle starts a new batch
        try:
            if self.needs_reconcile:
                await self.reconcile()
            if isinstance(item, CandleBatch):
                await self.deliver_candle(item.event, item.bots)
            elif isinstance(item, OBSERVATIONS):
                await self._observe(item)
            elif bot_id is not None:
                await self.deliver(bot_id, item)
        finally:
            if isinstance(item, CandleBatch):
                for held in item.bots:
                    self._release(held)
            else:
                self._release(bot_id if bot_id is not None else bot_of(item))

    # -- one event ----------------------------------------------------------------------
    async def deliver(self, bot_id: str, event: Event) -> int:
        """Step one bot with one event and carry out its commands; returns how many."""
        live = self.bots.get(bot_id)
        if live is None:
            return 0
        if isinstance(event, MARKET_EVENTS) and (not live.running or not wakes(live.interest, event)):
            return 0
        commands = 0
        if isinstance(event, SignalReceived):
            commands += await report_balances(self, live, event.at)
        with self.journal.transaction() as tx:
            state, outcome = self._step(tx, live, event)
        return commands + await self._after_commit(live, state, outcome, event)

    async def deliver_candle(self, event: CandleClosed, bot_ids: list[str]) -> int:
        """Group commit: every bot the candle wakes steps, their new states and order
        intents commit in one transaction, and only then do the orders go out (each
        intent is still journalled before its request). A bot whose ``step`` raises
        fails alone: the others commit, then its error is raised."""
        stepped: list[tuple[LiveBot, Any, list[Command]]] = []
        failure: Exception | None = None
        for bot_id in bot_ids:
            live = self.bots.get(bot_id)
            if live is None or not live.running or not wakes(live.interest, event):
                continue
            try:
                state, commands = live.module.step(live.config, live.state, event)
            except Exception as exc:  # raised below, once its neighbours are committed
                if failure is not None:
                    log.exception("account %s: bot %s failed on a candle", self.account.id, bot_id)
                failure = failure or exc
                continue
            stepped.append((live, state, commands))
        done: list[tuple[LiveBot, Any, Outcome]] = []
        if stepped:
            with self.journal.transaction() as tx:
                self._prefetch(tx, stepped)
                done = [(live, state, self._apply(tx, live, event, state, commands))
                        for live, state, commands in stepped]
        for live, state, outcome in done:
            self._adopt(live, state, outcome, event)
        if done:
            # The candle's decisions are durable; before this account spends time on the
            # exchange (or on re-indexing), let every other account woken by the same
            # candle commit its own. Its bots stay held awake in the hub meanwhile.
            await asyncio.sleep(0)
        for live, state, _outcome in done:
            self._reindex(live, state)
        total = 0
        for _live, _state, outcome in done:
            total += await self._carry_out(outcome)
        if failure is not None:
            raise failure
        return total

    async def _observe(self, obs: Observation) -> None:
        with self.journal.transaction() as tx:
            result = self.orders.apply(tx, obs)
            if result is None:
                return
            bot_id, event = result
            live = self.bots.get(bot_id)
            if live is None:
                return
            state, outcome = self._step(tx, live, event)
        await self._after_commit(live, state, outcome, event)

    async def _after_commit(self, live: LiveBot, state: Any, outcome: Outcome, event: Event) -> int:
        """The transaction committed: adopt the state, then do the I/O it asked for."""
        self._adopt(live, state, outcome, event)
        self._reindex(live, state)
        return await self._carry_out(outcome)

    def _adopt(self, live: LiveBot, state: Any, outcome: Outcome, event: Event) -> None:
        """The step is durable: it becomes the bot's state (then ``_reindex``)."""
        live.state = state
        if outcome.record is not None:
            live.record = outcome.record
        self.steps += 1
        if self.on_commands is not None and outcome.commands:
            self.on_commands(live.id, event, outcome.commands)
        for bot_id, follow_up in outcome.follow_ups:
            self._enqueue(bot_id, follow_up)

    def _reindex(self, live: LiveBot, state: Any) -> None:
        """What wakes the bot now, in memory and in the hub's trigger index."""
        interest = live.module.interest(live.config, state)
        if interest != live.interest:
            live.interest = interest
            self._index(live)

    async def _carry_out(self, outcome: Outcome) -> int:
        """The I/O a committed step asked for: alerts, orders, cancels."""
        for alert in outcome.alerts:
            await self._send_alert(alert)
        for obs in await self.orders.send_many([order.client_id for order in outcome.sends]):
            await self._observe(obs)
        market_sent = any(order.price is None for order in outcome.sends)
        for client_id in outcome.cancels:
            for obs in await self.orders.cancel(client_id):
                await self._observe(obs)
        if market_sent:
            self._poll_now.set()
        if self.orders.unsettled:
            # left set: only a reconcile settles it (one running now reads it at its end;
            # consumed here, it would end with the order forgotten, pending for good)
            self.needs_reconcile = True
        return outcome.commands

    async def _send_alert(self, alert: AlertRecord) -> None:
        if self.alert_sink is not None:
            await self.alert_sink(alert)

    # -- control ----------------------------------------------------------------------
    def set_status(self, bot_ids: list[str], status: str, reason: str) -> None:
        """Pause/stop/resume bots durably (the journal first, then memory)."""
        with self.journal.transaction() as tx:
            for bot_id in bot_ids:
                record = tx.get_bot(bot_id)
                if record is not None:
                    tx.save_bot(evolve(record, status=status, status_reason=reason))
                    if bot_id in self.bots:
                        self.bots[bot_id].record = evolve(record, status=status, status_reason=reason)
                    elif status == BotStatus.RUNNING:
                        why = self._try_load(evolve(record, status=status))
                        if why is None:
                            self._subscribe(self.bots[bot_id])
                        else:  # stored and shown in the dashboard (this sync path sends to no channel)
                            self._set_aside(tx, record, why)

    async def cancel_open_orders(self, bot_ids: list[str]) -> int:
        with self.journal.transaction() as tx:
            opens = [e for e in tx.open_orders(self.account.id) if e.bot in bot_ids]
        for entry in opens:
            for obs in await self.orders.cancel(entry.order.client_id):
                await self._observe(obs)
        return len(opens)

    async def raise_alert(self, user: str, level: AlertLevel, code: str, message: str,
                          bot: str | None = None) -> AlertRecord:
        with self.journal.transaction() as tx:
            alert = tx.add_alert(AlertRecord(user, level, code, message, self.clock.now(), self.account.id, bot))
        await self._send_alert(alert)
        return alert


class InProcessRunner(KillSwitch):
    """The default ``Runner``: every account in this process, one ``AccountRunner`` each
    (its kill switch and panic sell in ``engine.control``)."""

    def __init__(self, journal: Journal, venue_factory: VenueFactory, *, guard: GuardPolicy | None = None,
                 clock: Clock | None = None, settings: RunnerSettings | None = None,
                 budgets: Budgets | None = None, alert_sink: AlertSink | None = None) -> None:
        self.journal, self.venue_factory = journal, venue_factory
        self.guard = guard or GuardPolicy()
        self.clock: Clock = clock or SystemClock()
        self.settings = settings or RunnerSettings()
        self.budgets = budgets or Budgets(self.clock)
        self.alert_sink = alert_sink
        self.hub = FeedHub(self.settings.base_timeframe)
        # the guard's reference prices: one fetch per (venue, pair) per market_ttl for all accounts
        self.prices = ReferencePrices(self.clock, ttl=self.settings.market_ttl, max_age=self.settings.market_max_age)
        self.accounts: dict[str, AccountRunner] = {}
        self.collector = QuietCollector() if self.settings.quiet_gc else None
        self.streams = StreamPool(self.settings.stream_limits)  # websocket connections share sockets (real time)
        self.feeds = FeedSources(self.hub, self._feed_venue, self.streams, clock=self.clock,
                                 interval=self.settings.feed_interval, streaming=self.settings.stream_feeds,
                                 retry_max=self.settings.stream_retry_max, background=self.settings.background)
        if self.settings.poll_feeds:  # else a replay or the ingestor feeds the hub: no sources of its own
            self.hub.on_first_subscriber, self.hub.on_last_unsubscribed = self.feeds.open, self.feeds.close

    def _feed_venue(self, feed: str) -> Venue | None:
        return next((a.venue for a in self.accounts.values() if a.feed == feed), None)

    async def poll_feeds_once(self) -> int:
        """Poll every candle source once (what the background tasks do each interval)."""
        return await self.feeds.poll_once()

    def _record(self, account_id: str) -> AccountRecord:
        for account in self.journal.accounts():
            if account.id == account_id:
                return account
        raise KeyError(f"account {account_id} is not in the journal")

    async def start_account(self, account_id: str) -> None:
        if account_id in self.accounts:
            return
        account = self._record(account_id)
        venue = BudgetedVenue(await self.venue_factory(account), self.budgets.for_ip(self.settings.egress_ip))
        runner = AccountRunner(account, venue, self.journal, guard=self.guard, hub=self.hub, clock=self.clock,
                               settings=self.settings, budgets=self.budgets, alert_sink=self.alert_sink,
                               prices=self.prices, streams=self.streams)
        self.accounts[account_id] = runner
        try:
            await runner.start()
        except BaseException:
            del self.accounts[account_id]
            # nobody else holds this venue: closed here, or its ccxt session (opened by the
            # market refresh) leaks, collected later in some other event loop
            with contextlib.suppress(Exception):
                await venue.close()
            raise
        if self.collector is not None:
            runner.on_idle = self._idle
            self.collector.install()  # the account's bots are long-lived: settled, out of later collections

    def _idle(self) -> None:
        """An account's queue ran empty: if every account's has, a full collection may run
        (or must, once overdue: some account is always busy)."""
        if self.collector is not None and self.collector.due() and (
                self.collector.overdue() or all(a.queue.empty() for a in self.accounts.values())):
            self.collector.collect()

    async def stop_account(self, account_id: str) -> None:
        runner = self.accounts.pop(account_id, None)
        if runner is not None:
            try:
                await runner.stop()
            finally:  # a stop that fails or is cancelled still gives the venue back (its ccxt session)
                self.feeds.hand_over(runner.venue, runner.feed)  # its streams other accounts still read
                await runner.venue.close()

    async def stop(self) -> None:
        for account_id in list(self.accounts):
            await self.stop_account(account_id)
        await self.feeds.stop()
        await self.prices.close()
        if self.collector is not None:
            self.collector.uninstall()


__all__ = [
    "AccountRunner", "InProcessRunner", "LiveBot", "Runner", "RunnerSettings", "bot_indicators", "bot_pairs",
    "wakes",
]
