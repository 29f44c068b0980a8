"""The order manager: never place an order twice, never lose a fill.

The protocol, per order:

1. The runner journals the order as ``pending`` (with its client order id derived from
   bot, deal, step) in the same transaction as the bot state that asked for it, and
   commits, *before* any request goes out. The journalling time (wall clock) is the
   order's first *attempt time* (``attempted_at``).
2. ``send`` places it, signed with its attempt time, not with the moment ccxt signs it
   (``Venue.create_order(attempt_at=...)``): the exchange carries the request out only
   within its receive window of that time (``Venue.send_window()``: Binance's
   ``recvWindow``, KuCoin's 5 s), however late it leaves this process. The exchange's
   answer updates the journal. A rejection becomes a ``Rejection`` observation. A
   timeout, a 5xx or a 429 leaves the outcome unknown: ``resolve`` looks the order up
   *by client id* first, and only re-sends (with the same id) when the exchange has
   never seen it *and can no longer see it*: a client id only has to be unique among
   *open* orders, so a market order re-sent while an earlier attempt can still arrive is
   placed twice. The rule is exact: not found once ``in_flight_window`` (the receive
   window plus ``CLOCK_SKEW_MARGIN``) has passed since the latest attempt time means no
   earlier attempt can ever be carried out, so a re-send is safe; it journals a new
   attempt time (committed, fenced) before its request. Earlier than that means "ask
   again later". A request the exchange refuses for its time (``RequestExpired``:
   Binance -1021, KuCoin 400002) is a dead attempt, not a rejected order: a worker
   paused between journal and request wakes to find the partition's new owner may
   have placed the order already, so it only resolves, and the order's deal goes on.
   The attempt time a request is signed with is read in the same (fenced) transaction
   that records the attempt, so it is always the latest one. Venues that cannot pin
   the time (paper) fall back to a configured ``in_flight_window`` guess.
3. ``poll`` gathers what happened on the exchange since: trades (``read_my_trades``)
   and orders that left the book (filled, canceled, expired). A read is bounded
   (``venues.trade_paging.MAX_PAGES`` requests); one that stops at the bound says where
   the next goes on, and the pair's later polls *drain* the backlog from there, each
   bounded, until one reaches the present: no watermark moves past a trade not yet read.
4. ``apply`` turns one observation into at most one bot event, inside the runner's
   transaction: a fill is recorded under the unique (order, trade id), so applying the
   same trade twice yields nothing the second time.
5. A cancel a bot asked for is journalled (``CANCEL_REQUESTED`` as the entry's reason)
   in the bot's own transaction (a kill switch journals it in its own), so it outlives a
   failed request and a crash: every poll sends it again while the exchange still lists
   the order as open, and a pending order so marked is never sent (or re-sent).
6. ``reconcile`` runs on start and after any error, before the account's bots may act:
   pending orders are found on the exchange or re-sent/marked, and every trade and
   final status since the oldest open order is observed (a backlog past the bound is
   drained by the polls after it; a drain that lost no fill goes on where it was).

A status the exchange calls final is adopted only once the fills behind it are in the
books, so "filled" in sealbot always means "and every fill applied".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sealbot.domain import ClientOrderId, Fill, Order, OrderFilled, OrderStatus, OrderWasRejected, Pair
from sealbot.domain.errors import OrderRejected
from sealbot.domain.events import OrderCanceled
from sealbot.domain.evolve import evolve
from sealbot.engine.budget import Budget
from sealbot.engine.clock import Clock, SystemClock
from sealbot.engine.journal import AccountRecord, Journal, JournalOrder, JournalTx
from sealbot.venues.base import Venue, is_foreign
from sealbot.venues.errors import (
    ExchangeUnavailable,
    InsufficientFunds,
    RateLimited,
    RequestExpired,
    UnknownOrder,
    VenueError,
)
from sealbot.venues.trade_paging import ResumeAt

log = logging.getLogger(__name__)

FILL_LOOKBACK = timedelta(minutes=2)
"""Trades are fetched from this long before the oldest open order was journalled, to
absorb clock differences between sealbot and the exchange."""

CLOCK_SKEW_MARGIN = 2.0
"""Seconds added to the exchange's receive window before an unanswered attempt is taken
for dead: the error of the host-to-exchange time difference the request was signed with
(ccxt's ``timeDifference``, or none) and the host clock's drift since it was measured."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """The exchange (or sealbot, for an order that never got out) refused the order."""

    client_id: ClientOrderId
    reason: str
    at: datetime
    unsent: bool = False  # sealbot gave up sending it: the exchange never saw it


@dataclass(frozen=True, slots=True)
class Drain:
    """A pair whose trades since ``since`` are being read over several polls, because one
    bounded read could not reach the present: the next read goes on from ``resume``."""

    since: datetime
    resume: ResumeAt
    polls: int  # reads so far (the first included)
    requests: int  # requests they made


UNCONFIRMED_CHECK = 1024
"""Fills returned by polls and not yet seen in the journal that make a poll look them up
(and forget those recorded), so the record of them stays small."""


CANCEL_REQUESTED = "cancel requested"
"""The reason recorded on an open order a bot asked to cancel, until the exchange confirms."""

Observation = Fill | Order | Rejection
"""What the exchange told us: a trade, an order's current state, or a refusal."""

BotEvent = OrderFilled | OrderCanceled | OrderWasRejected


class OrderManager:
    """Orders of one exchange account; the runner owns one per account."""

    def __init__(self, account: AccountRecord, venue: Venue, journal: Journal, *, budget: Budget | None = None,
                 clock: Clock | None = None, max_attempts: int = 3, resend_window: float = 300.0,
                 in_flight_window: float = 15.0, clock_skew_margin: float = CLOCK_SKEW_MARGIN) -> None:
        self.account, self.venue, self.journal, self.budget = account, venue, journal, budget
        self.clock: Clock = clock or SystemClock()
        self.wall = self.clock.wall  # attempt times: the exchange's kind of time, never a replay's
        self.max_attempts, self.resend_window = max_attempts, resend_window
        self.unpinned_window = in_flight_window  # for a venue that cannot pin a request's time
        self.clock_skew_margin = clock_skew_margin
        self.sent = 0  # requests that created an order (for tests and metrics)
        self.unsettled = False  # an order's fate is unknown: the account must reconcile
        # Per open order (journal key): when the last poll that read its pair's trades with
        # it among the orders watched began. The next poll reads trades from there (less
        # FILL_LOOKBACK), not from the order's creation: a grid level open for days would
        # otherwise have every poll page through days of the pair's trades (20 weight a
        # page on Binance, every poll interval). A mark moves only once a read reached the
        # present, never past trades a bounded read left unread. Forgotten by ``reconcile``
        # (but on a pair whose drain it keeps), so after an error or a restart every open
        # order's trades are read again from its creation.
        self._polled_from: dict[str, datetime] = {}
        # Per pair whose last read stopped at its request bound: where the next poll goes on
        # (``Drain``). While a pair drains, its orders' marks above stay where they were.
        self._drains: dict[Pair, Drain] = {}
        # Per pair, the fills polls returned (client id, trade id) that were not yet seen in
        # the journal: a reconcile keeps a pair's drain only when every one of them is
        # recorded (none was lost to a failed step), otherwise it reads from creation again.
        self._returned: dict[Pair, set[tuple[ClientOrderId, str]]] = {}

    @property
    def in_flight_window(self) -> float:
        """Seconds after an attempt's time during which it may still be carried out: the
        venue's receive window (the one source of truth: the request is signed with it)
        plus the clock-skew margin; the configured guess where the venue cannot pin."""
        window = self.venue.send_window()
        return self.unpinned_window if window is None else window + self.clock_skew_margin

    # -- journal ------------------------------------------------------------------
    def journal_new(self, tx: JournalTx, bot: str, order: Order, notional: Decimal | None = None) -> JournalOrder:
        """Step 1: write the order down as pending, with its first attempt time and what it
        counts against its owners' daily limits (``JournalOrder.notional``). Call inside
        the bot's transaction."""
        if order.status is not OrderStatus.PENDING or order.filled:
            order = evolve(order, status=OrderStatus.PENDING, filled=Decimal(0))
        entry = JournalOrder(self.account.id, bot, order, self.clock.now(), attempted_at=self.wall(),
                             notional=notional)
        tx.add_order(entry)
        return entry

    def _get(self, client_id: ClientOrderId) -> JournalOrder | None:
        with self.journal.transaction() as tx:
            return tx.get_order(client_id)

    def _record_answers(self, answers: Sequence[tuple[ClientOrderId, Order]]) -> None:
        """Adopt the exchange's view of orders (their ids, a non-final status) without
        touching what only fills may change, in one transaction."""
        with self.journal.transaction() as tx:
            for client_id, answer in answers:
                entry = tx.get_order(client_id)
                if entry is not None:
                    tx.put_order(_merge(entry, answer))

    # -- sending ------------------------------------------------------------------
    async def send(self, client_id: ClientOrderId) -> list[Observation]:
        """Step 2: place a journalled pending order (no-op if it is no longer pending),
        signed with its journalled attempt time."""
        return await self._send(client_id, again=False)

    async def send_many(self, client_ids: Sequence[ClientOrderId]) -> list[Observation]:
        """Step 2 for the orders one committed step asked for, placed in their order. When
        the budget has room for all of them now, their attempts are recorded in one
        transaction before the first request and the open orders' answers in one after
        the last (a crash between leaves them pending: reconcile looks them up by client
        id); otherwise each is sent as by ``send``. What the exchange answered is
        observed after the last request either way."""
        if len(client_ids) < 2 or (self.budget is not None and not self.budget.try_acquire(len(client_ids))):
            return [obs for client_id in client_ids for obs in await self.send(client_id)]
        with self.journal.transaction() as tx:
            attempts = [self._attempt_in(tx, client_id, again=False) for client_id in client_ids]
        observations: list[Observation] = []
        answers: list[tuple[ClientOrderId, Order]] = []
        for client_id, attempt in zip(client_ids, attempts, strict=True):
            answer = attempt if isinstance(attempt, list) else await self._request(*attempt)
            if isinstance(answer, list):
                observations += answer
            elif answer.status.is_final:
                observations.append(answer)  # recorded where it is applied, as in ``_send``
            else:
                answers.append((client_id, answer))
        if answers:
            self._record_answers(answers)
        return observations

    async def _send(self, client_id: ClientOrderId, *, again: bool) -> list[Observation]:
        """One attempt; ``again``: a re-send, which journals a new attempt time first.

        When the budget has room now, the order is read, checked and its attempt recorded
        in one transaction. When it must wait, the order is looked at first, so the wait
        is only for an order still to send, and read again after it: the wait may have
        let another process place it."""
        if self.budget is not None and not self.budget.try_acquire():
            unsendable = self._unsendable(self._get(client_id))
            if unsendable is not None:
                return unsendable
            await self.budget.acquire()
        with self.journal.transaction() as tx:
            attempt = self._attempt_in(tx, client_id, again)
        answer = attempt if isinstance(attempt, list) else await self._request(*attempt)
        if isinstance(answer, list):
            return answer
        if answer.status.is_final:
            # returned as an observation: applying it records the answer in the caller's
            # transaction (``apply`` merges it as ``_record_answers`` would), one less here
            return [answer]
        self._record_answers([(client_id, answer)])
        return []

    async def _request(self, entry: JournalOrder, attempt_at: datetime) -> Order | list[Observation]:
        """The request of one recorded attempt: the exchange's answer, or what to observe
        instead when it refused the order or its outcome had to be looked up."""
        client_id = entry.order.client_id
        try:
            answer = await self.venue.create_order(entry.order, attempt_at)
        except RequestExpired as exc:
            self._dead_attempt(client_id, attempt_at, exc)
            return await self.resolve(client_id)
        except (InsufficientFunds, OrderRejected) as exc:
            # A duplicate client id means the order *is* there: look before calling it rejected.
            if "client id" in str(exc):
                return await self.resolve(client_id)
            return [Rejection(client_id, str(exc), self.clock.now())]
        except (ExchangeUnavailable, RateLimited, TimeoutError) as exc:
            self._slow_down(exc)
            log.warning("order %s: outcome unknown (%s); looking it up", client_id, type(exc).__name__)
            return await self.resolve(client_id)
        self.sent += 1
        return answer

    def _unsendable(self, entry: JournalOrder | None) -> list[Observation] | None:
        """What to report instead of sending ``entry`` (``[]``: nothing), or ``None`` if it
        is still to send."""
        if entry is None or entry.order.status is not OrderStatus.PENDING:
            return []  # settled meanwhile (another process's answer, or a reconcile's)
        if entry.attempts >= self.max_attempts:
            return [Rejection(entry.order.client_id, f"not placed after {entry.attempts} attempts", self.clock.now(),
                              unsent=True)]
        if entry.reason == CANCEL_REQUESTED:
            # cancelled (by its bot or a kill switch) before it went out: it never does, and
            # it is cancelled, not rejected: a bot closing a deal waits for that cancel
            return [evolve(entry.order, status=OrderStatus.CANCELED)]
        return None

    def _attempt_in(self, tx: JournalTx, client_id: ClientOrderId,
                    again: bool) -> tuple[JournalOrder, datetime] | list[Observation]:
        """Journal one more attempt in ``tx`` (committed before its request) and return the
        entry and the time to sign it with: the journalled one for a first attempt, a new
        one for a re-send. Read, checked and written in one transaction, so on a fenced
        journal it is the latest attempt time there is; what to report instead when the
        order is not to be sent (``_unsendable``)."""
        current = tx.get_order(client_id)
        unsendable = self._unsendable(current)
        if unsendable is not None:
            return unsendable
        assert current is not None
        at = self.wall() if again or current.attempted_at is None else current.attempted_at
        tx.put_order(evolve(current, attempts=current.attempts + 1, attempted_at=at))
        return current, at

    def _dead_attempt(self, client_id: ClientOrderId, attempt_at: datetime, exc: RequestExpired) -> None:
        """The exchange refused the attempt for its time: it was not carried out, and never
        will be. Late (a paused process) is the expected case; refused while still young
        by our clock means this host's clock is off the exchange's."""
        age = (self.wall() - attempt_at).total_seconds()
        window = self.venue.send_window()
        if window is not None and age < window:
            log.warning("order %s: the exchange refused an attempt %.1f s old as expired (%s): is this "
                        "host's clock off the exchange's?", client_id, age, exc)
        else:
            log.warning("order %s: attempt of %.1f s ago refused as expired: it was sent late; resolving",
                        client_id, age)

    def _slow_down(self, exc: BaseException) -> None:
        if self.budget is None or not isinstance(exc, RateLimited):
            return
        if "418" in str(exc) or "banned" in str(exc).lower():
            self.budget.banned(None)
        else:
            self.budget.rate_limited(None)

    async def resolve(self, client_id: ClientOrderId) -> list[Observation]:
        """The outcome of a send is unknown: ask the exchange by client id, and re-send
        (same id) only when it has never seen the order and the order is still fresh."""
        entry = self._get(client_id)
        if entry is None or entry.order.status is not OrderStatus.PENDING:
            return []
        try:
            found = await self.venue.fetch_order(client_id, entry.order.pair)
        except UnknownOrder:
            age = (self.clock.now() - entry.created_at).total_seconds()
            last = entry.attempted_at or entry.created_at  # rows journalled before attempt times
            if (self.wall() - last).total_seconds() < self.in_flight_window:
                # the latest attempt may still reach the exchange: look again later
                self.unsettled = True
                return []
            # no attempt can be carried out any more: a new one is the only one there is
            if entry.attempts < self.max_attempts and age <= self.resend_window:
                return await self._send(client_id, again=True)
            why = "never reached the exchange" + (" (too old to send now)" if age > self.resend_window else "")
            return [Rejection(client_id, why, self.clock.now(), unsent=True)]
        except VenueError as exc:
            self._slow_down(exc)
            self.unsettled = True
            log.warning("order %s: lookup failed (%s); left pending for reconcile", client_id, type(exc).__name__)
            return []
        self._record_answers([(client_id, found)])
        return [found]

    @staticmethod
    def request_cancel(tx: JournalTx, client_id: ClientOrderId) -> None:
        """Make a bot's cancel durable (call inside the bot's transaction)."""
        entry = tx.get_order(client_id)
        if entry is not None and not entry.order.status.is_final:
            tx.put_order(evolve(entry, reason=CANCEL_REQUESTED))

    async def cancel(self, client_id: ClientOrderId) -> list[Observation]:
        entry = self._get(client_id)
        if entry is None or entry.order.status.is_final:
            return []
        if entry.order.status is OrderStatus.PENDING:
            return await self.resolve(client_id) + await self.cancel_if_open(client_id)
        return await self.cancel_if_open(client_id)

    async def cancel_if_open(self, client_id: ClientOrderId) -> list[Observation]:
        entry = self._get(client_id)
        if entry is None or entry.order.status.is_final or entry.order.status is OrderStatus.PENDING:
            return []
        if self.budget is not None:
            await self.budget.acquire()
        try:
            return [await self.venue.cancel_order(client_id, entry.order.pair)]
        except UnknownOrder:
            return []
        except (OrderRejected, VenueError) as exc:
            self._slow_down(exc)
            log.warning("cancel %s failed: %s", client_id, exc)
            return []

    # -- observing ------------------------------------------------------------------
    @property
    def drains(self) -> dict[Pair, Drain]:
        """The pairs whose trades are still being read over several polls (a backlog)."""
        return dict(self._drains)

    async def poll(self) -> list[Observation]:
        """Step 3: trades and final states of every order sealbot has open on the account."""
        with self.journal.transaction() as tx:
            opens = [e for e in tx.open_orders(self.account.id) if e.order.status is not OrderStatus.PENDING]
        if not opens:
            self._drains.clear()
            return []
        observations: list[Observation] = []
        by_pair: dict[Pair, list[JournalOrder]] = {}
        for entry in opens:
            by_pair.setdefault(entry.order.pair, []).append(entry)
        polled: dict[str, datetime] = {}
        drains: dict[Pair, Drain] = {}
        for pair, entries in by_pair.items():
            began = self.clock.now()
            since = min(self._polled_from.get(e.key, e.created_at) for e in entries) - FILL_LOOKBACK
            drain = self._drains.get(pair)
            if drain is not None and since < drain.since:
                # an order that was pending when the drain began needs trades from before it
                log.info("account %s %s: an order needs the trades since %s, before the backlog being read "
                         "(since %s): reading from there again", self.account.id, pair, since, drain.since)
                drain = None
            mine = {e.key for e in entries}
            batch = await self.venue.read_my_trades(pair, drain.since if drain else since,
                                                    drain.resume if drain else None)
            returned = self._returned.setdefault(pair, set())
            for fill in batch.fills:
                if not is_foreign(fill.client_id) and fill.client_id.text in mine:
                    observations.append(fill)
                    returned.add((fill.client_id, fill.trade_id))
            if batch.resume is None:
                # read up to the present: from here on, each order is read from this poll on
                polled.update(dict.fromkeys(mine, began))
                if drain is not None:
                    log.info("account %s %s: backlog since %s read in %d polls, %d requests", self.account.id,
                             pair, drain.since, drain.polls + 1, drain.requests + batch.requests)
            else:
                # stopped at the request bound: the marks stay put, the next poll goes on from resume
                polled.update({k: self._polled_from[k] for k in mine if k in self._polled_from})
                drains[pair] = Drain(drain.since if drain else since, batch.resume,
                                     (drain.polls if drain else 0) + 1,
                                     (drain.requests if drain else 0) + batch.requests)
            still_open = {o.client_id.text for o in await self.venue.fetch_open_orders(pair)}
            for entry in entries:
                if entry.key in still_open and entry.reason == CANCEL_REQUESTED:
                    # the bot's cancel failed or never went out (a fault, a crash): again
                    observations += await self.cancel_if_open(entry.order.client_id)
                elif entry.key not in still_open:
                    try:
                        observations.append(await self.venue.fetch_order(entry.order.client_id, pair))
                    except UnknownOrder:
                        observations.append(Rejection(entry.order.client_id, "the exchange lost the order",
                                                      self.clock.now()))
        # only the orders still open, and only once every pair was read
        self._polled_from, self._drains = polled, drains
        if sum(len(r) for r in self._returned.values()) > UNCONFIRMED_CHECK:
            self._confirm(set(self._returned))
        return observations

    def _confirm(self, pairs: set[Pair]) -> set[Pair]:
        """Forget the returned fills of ``pairs`` that the journal has recorded; return
        the pairs none of whose returned fills is missing from it."""
        whole: set[Pair] = set()
        if not pairs:
            return whole
        with self.journal.transaction() as tx:
            for pair in pairs:
                by_order: dict[ClientOrderId, set[str]] = {}
                for client_id, trade_id in self._returned.get(pair, ()):
                    by_order.setdefault(client_id, set()).add(trade_id)
                left: set[tuple[ClientOrderId, str]] = set()
                for client_id, trade_ids in by_order.items():
                    if tx.get_order(client_id) is None:
                        continue  # not ours (any more): no fill of it can be applied, none lost
                    recorded = {f.trade_id for f in tx.fills_of(client_id)}
                    left.update((client_id, t) for t in trade_ids - recorded)
                self._returned[pair] = left
                if not left:
                    whole.add(pair)
        return whole

    async def reconcile(self) -> list[Observation]:
        """Step 5: settle every pending order, then observe everything since.

        Every open order's trades are read again from its creation (after an error a fill
        a poll returned may never have been applied), except on a pair whose backlog is
        being drained and whose every returned fill is in the journal: re-reading it from
        creation would start the drain over, and with a fault every few polls a long one
        would never end. That pair's drain goes on where it was."""
        keep = self._confirm(set(self._drains))
        with self.journal.transaction() as tx:
            open_entries = tx.open_orders(self.account.id)
        pair_of = {e.key: e.order.pair for e in open_entries}
        self._drains = {p: d for p, d in self._drains.items() if p in keep}
        self._polled_from = {k: at for k, at in self._polled_from.items() if pair_of.get(k) in keep}
        self._returned.clear()
        pending = [e for e in open_entries if e.order.status is OrderStatus.PENDING]
        observations: list[Observation] = []
        for entry in pending:
            observations += await self.resolve(entry.order.client_id)
        return observations + await self.poll()

    # -- applying ---------------------------------------------------------------------
    def apply(self, tx: JournalTx, observation: Observation) -> tuple[str, BotEvent] | None:
        """Step 4: record one observation; return (bot id, event) when the bot must hear
        of it, exactly once however often the same observation is applied."""
        if isinstance(observation, Fill):
            return self._apply_fill(tx, observation)
        if isinstance(observation, Rejection):
            entry = tx.get_order(observation.client_id)
            if entry is None or entry.order.status.is_final:
                return None
            tx.put_order(evolve(entry, order=evolve(entry.order, status=OrderStatus.REJECTED),
                                reason=observation.reason))
            return entry.bot, OrderWasRejected(observation.client_id, observation.reason, observation.at,
                                               unsent=observation.unsent)
        entry = tx.get_order(observation.client_id)
        if entry is None:
            return None
        merged = _merge(entry, observation)
        tx.put_order(merged)
        if merged.order.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED) and not entry.order.status.is_final:
            return entry.bot, OrderCanceled(observation.client_id, self.clock.now())
        if merged.order.status is OrderStatus.REJECTED and not entry.order.status.is_final:
            return entry.bot, OrderWasRejected(observation.client_id, "rejected by the exchange", self.clock.now())
        return None

    def _apply_fill(self, tx: JournalTx, fill: Fill) -> tuple[str, BotEvent] | None:
        entry = tx.get_order(fill.client_id)
        if entry is None or entry.account != self.account.id or not tx.add_fill(self.account.id, fill):
            return None
        order = entry.order
        filled = order.filled + fill.amount
        cost = (order.average_price or Decimal(0)) * order.filled + fill.price * fill.amount
        status = OrderStatus.FILLED if filled >= order.amount else OrderStatus.PARTIALLY_FILLED
        tx.put_order(evolve(entry, order=evolve(order, filled=filled, average_price=cost / filled, status=status)))
        return entry.bot, OrderFilled(fill, max(order.amount - filled, Decimal(0)))


def _merge(entry: JournalOrder, answer: Order, attempts: int | None = None) -> JournalOrder:
    """The journal entry updated with the exchange's view. Fills change ``filled``; a
    final status is adopted only when the journal's fills cover what the exchange says
    was filled (otherwise the order stays open until the missing trades are applied)."""
    order = entry.order
    status = order.status
    if not status.is_final:
        if answer.status.is_final and order.filled >= answer.filled:
            status = OrderStatus.FILLED if order.filled >= order.amount else answer.status
        elif answer.status is OrderStatus.PENDING:
            status = order.status
        else:
            status = OrderStatus.PARTIALLY_FILLED if order.filled > 0 else OrderStatus.OPEN
    merged = evolve(order, status=status, exchange_id=answer.exchange_id or order.exchange_id)
    return evolve(entry, order=merged, attempts=entry.attempts if attempts is None else attempts)
