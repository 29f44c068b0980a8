"""The exchange's user-data stream as a doorbell for the fill poller.

An account's fills are applied in one place only: ``OrderManager.poll`` (engine/orders.py)
reads the exchange over REST, matches trades to orders by client order id and journals
each fill exactly once. It runs every ``RunnerSettings.poll_interval`` (2 s), so a fill
reached its bot up to 2 s late.

Where the exchange pushes the account's order changes over a websocket, this watcher
listens and, for every execution report (new, trade, cancel, expiry), rings the
account's poller (``AccountRunner._poll_now``): the poll runs at once and the fill reaches
the bot in milliseconds. The stream's contents are *not* applied: a second path that
applies fills could apply one twice or in another order than the journal, and a stream
can miss events across a reconnect. So the stream changes only latency:

* stream up: a fill is polled within milliseconds of the exchange reporting it;
* stream down, refused or never offered: the interval poll goes on as before; the
  watcher reconnects with exponential backoff (1 s doubling to ``retry_max``), and rings
  once on every (re)subscription so whatever happened while it was down is polled now.

Each session is a new websocket connection, one per account. Binance allows 300 new
connections per 5 minutes per IP, so a worker taking over hundreds of accounts at once
must not dial them all: every dial is first counted by ``dial`` (the runner's
``StreamPool.count_dial`` under the WebSocket API's endpoint, the same sliding window the
candle streams keep), and a dial over the limit is a failed try like any other (backed
off and retried; the account polls meanwhile).

Offered on a venue whose requests are signed by the custody signer: the ccxt.pro object
is built by ``venues.signing.create_signed_stream_exchange`` from the REST object's signer
and handle, so it holds no secret either.

* Binance spot: ``userDataStream.subscribe.signature`` on the WebSocket API (ccxt.pro's
  ``authenticate``), then ``watch_orders``; the signer signs the subscription and its
  policy admits nothing else over the WebSocket API. Accounts with an Ed25519 key stay
  on polling: the signer refuses that signature (see ``custody.policy``).
* KuCoin spot (classic account): a connect token from ``POST /api/v1/bullet-private`` (a
  REST request the signer signs like any other; nothing is signed over the websocket),
  then ``watch_orders`` on ``/spotMarket/tradeOrders``; subscribed once KuCoin acks the
  topic (ccxt.pro resolves a watch only on data). A new session asks for a new token.
  Dials are counted under ``kucoin@<REST URL>`` with KuCoin's limits (``stream_pool``).

Not offered: the paper venue (no exchange) and venues without a signer.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import Callable
from typing import Any

from sealbot.engine.streaming import follow_rest  # the same endpoint as the REST object, as candle streams
from sealbot.venues.base import Venue
from sealbot.venues.signing import STREAM_EXCHANGES, create_signed_stream_exchange

log = logging.getLogger(__name__)

# ccxt options the stream object takes over from the REST one: spot, the same receive
# window, and the clock offset ccxt measured, so the subscription's timestamp is fresh
# (KuCoin: ``uta`` as the REST object has it, so no account-mode request first)
_COPIED_OPTIONS = ("defaultType", "recvWindow", "timeDifference", "adjustForTimeDifference", "uta")
KUCOIN_ORDERS_TOPIC = "/spotMarket/tradeOrders"  # what ccxt.pro's kucoin.watch_orders subscribes (spot)
ACK_TIMEOUT = 10.0  # seconds a KuCoin subscription may take to be acked


def user_stream_exchange(venue: Venue) -> Any | None:
    """A ccxt.pro exchange subscribed to ``venue``'s account through the signer, or ``None``
    when the venue has no user-data stream sealbot can use (see module doc). Budget and
    other wrappers (``.inner``) are looked through; a paper venue's data venue is not
    (the paper account is not on the exchange)."""
    inner: Any = venue
    while hasattr(inner, "inner"):
        inner = inner.inner
    rest = getattr(inner, "exchange", None)
    exchange_id = getattr(rest, "id", None)
    signer, handle = getattr(rest, "_sb_signer", None), getattr(rest, "_sb_handle", None)
    if rest is None or exchange_id not in STREAM_EXCHANGES or signer is None:
        return None
    if getattr(handle, "algorithm", "hmac-sha256") != "hmac-sha256":
        return None  # the signer's policy refuses a WebSocket API signature with an Ed25519 key
    options = {k: copy.deepcopy(rest.options[k]) for k in _COPIED_OPTIONS if k in rest.options}
    pro = create_signed_stream_exchange(exchange_id, signer, handle,
                                        {"options": options, "timeout": getattr(rest, "timeout", 10_000)},
                                        rest._sb_request_type)
    return pro if follow_rest(pro, rest) else None


class UserStreamWatcher:
    """Rings ``wake`` for every execution report of one account (see module doc).

    ``exchange_factory`` makes a fresh ccxt.pro object per session (``user_stream_exchange``);
    ``events``, ``sessions`` and ``subscribed`` are for tests and metrics.
    """

    def __init__(self, account_id: str, exchange_factory: Callable[[], Any | None], wake: Callable[[], None], *,
                 retry_min: float = 1.0, retry_max: float = 60.0,
                 dial: Callable[[str], None] | None = None) -> None:
        if retry_min <= 0 or retry_max < retry_min:
            raise ValueError("user stream retry: need 0 < retry_min <= retry_max")
        self.account_id, self.factory, self.wake = account_id, exchange_factory, wake
        self.dial = dial  # counts a new connection to an endpoint; raises when over the exchange's limit
        self.retry_min, self.retry_max = retry_min, retry_max
        self.events = 0  # execution reports received
        self.sessions = 0  # successful subscriptions
        self.subscribed = False
        self.last_event_at: float | None = None  # time.monotonic() of the last report

    async def run(self) -> None:
        """Until cancelled: subscribe, ring on every report, reconnect with backoff."""
        delay = self.retry_min
        while True:
            exchange: Any = None
            failure = "closed"
            try:
                exchange = self.factory()  # a fresh ccxt.pro object: nothing stale from the last session
                if exchange is None:
                    return  # no stream for this venue: polling only
                if self.dial is not None:
                    self.dial(ws_api_endpoint(exchange))
                await self._session(exchange)
            except Exception as exc:  # logged; the interval poll covers for it (a signer error too)
                failure = type(exc).__name__  # the class only: ccxt's messages may quote the request
            finally:
                if self.subscribed:
                    delay = self.retry_min  # it was up: start the backoff over
                self.subscribed = False
                if exchange is not None:
                    await _release(exchange)
            log.warning("account %s: user-data stream down (%s); fills are polled every interval meanwhile, "
                        "retrying in %.1f s", self.account_id, failure, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max)

    async def _session(self, exchange: Any) -> None:
        first = await _subscribe(exchange)  # answered (Binance) or acked (KuCoin)
        self.subscribed = True
        self.sessions += 1
        log.info("account %s: user-data stream subscribed; fills are polled as the exchange reports them",
                 self.account_id)
        self.wake()  # whatever happened while there was no stream: poll it now
        try:
            while True:
                if first is not None:
                    watch, first = first, None
                    await watch
                else:
                    await exchange.watch_orders()
                self.events += 1
                self.last_event_at = time.monotonic()
                self.wake()
        finally:
            if first is not None:
                first.cancel()


async def _subscribe(exchange: Any) -> asyncio.Future[Any] | None:
    """Subscribe ``exchange`` to its account's order changes; returns the first watch when
    subscribing started one (KuCoin), which the session then awaits as its first event."""
    if getattr(exchange, "id", None) != "kucoin":
        await exchange.authenticate({"type": "spot"})  # Binance: userDataStream.subscribe.signature, answered
        return None
    exchange.open()  # bind it to this loop: negotiate spawns a task before any request has done it
    url = await exchange.negotiate(True)  # POST bullet-private, signed by the signer: a private token
    if url is None:
        raise ConnectionError("kucoin: no private websocket token")
    first: asyncio.Future[Any] = asyncio.ensure_future(exchange.watch_orders())
    deadline = time.monotonic() + ACK_TIMEOUT
    try:
        while not _acked(exchange.clients.get(url), KUCOIN_ORDERS_TOPIC):
            if first.done():
                first.result()  # the watch failed: raise its error; or an order change came first
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"kucoin: {KUCOIN_ORDERS_TOPIC} not acked within {ACK_TIMEOUT:g} s")
            await asyncio.sleep(0.01)
    except BaseException:
        first.cancel()
        raise
    return first


def _acked(client: Any, topic: str) -> bool:
    """Whether KuCoin acked ``topic`` on ccxt.pro's ``client``: ccxt keeps the request id
    -> topic until the ack (``handle_subscription_status`` deletes it) and the topic's own
    entry for as long as it is subscribed."""
    subscriptions = getattr(client, "subscriptions", None)
    if not isinstance(subscriptions, dict) or topic not in subscriptions:
        return False
    return not any(key != topic and value == topic for key, value in subscriptions.items())


CLOSE_GRACE = 5.0  # seconds a cancelled watcher still waits for its session's close


async def _release(exchange: Any) -> None:
    """Close a session's ccxt.pro object, to the end even when the watcher is cancelled
    meanwhile (its account stops while a dropped session is being closed: the websocket
    close handshake takes a round trip). A close cut short left the aiohttp session open,
    and ccxt warned of it when the object was collected, in whatever loop ran then."""
    closing = asyncio.ensure_future(exchange.close())
    closing.add_done_callback(lambda t: t.cancelled() or t.exception())  # its error is not news
    try:
        with contextlib.suppress(Exception):
            await asyncio.shield(closing)
    except asyncio.CancelledError:
        # the close goes on under the shield: wait for it (bounded: a stop must not hang on
        # a peer that never answers the close), then be cancelled
        await asyncio.wait({closing}, timeout=CLOSE_GRACE)
        raise


def ws_api_endpoint(exchange: Any) -> str:
    """The key a stream object's new connections are counted under: Binance's WebSocket
    API URL; for KuCoin, whose private endpoint comes with its token, the REST URL that
    hands the token out (``kucoin@...``: the pool counts it with KuCoin's limits)."""
    if getattr(exchange, "id", None) == "kucoin":
        return f"kucoin@{exchange.urls['api']['private']}"
    url = exchange.urls["api"]["ws"]["ws-api"]["spot"]
    return f"ws-api@{url}"


def user_stream_for(account_id: str, venue: Venue, wake: Callable[[], None], *,
                    retry_max: float = 60.0, dial: Callable[[str], None] | None = None) -> UserStreamWatcher | None:
    """The watcher for ``venue``'s account, or ``None`` when the venue offers no stream."""
    probe = user_stream_exchange(venue)
    if probe is None:
        return None
    first: list[Any] = [probe]

    def factory() -> Any | None:
        return first.pop() if first else user_stream_exchange(venue)

    return UserStreamWatcher(account_id, factory, wake, retry_max=retry_max, dial=dial)
