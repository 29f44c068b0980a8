"""Candles over simex's KuCoin websocket through the unmodified ccxt.pro client (a connect
token first, then ``/market/candles``): closed candles reach the hub once and in order, a
dropped stream falls back to REST polling and back-fills without gap or duplicate, and the
pool keeps KuCoin's limits, not Binance's."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from sealbot.domain import Pair
from sealbot.engine.stream_pool import KUCOIN_STREAM_LIMITS, StreamLimits, StreamPool
from sealbot.engine.streaming import stream_exchange
from sealbot.simex import SimexServer
from sealbot.simex.ws_kucoin import KucoinStreams

from .stream_env import PAIR, START, Feed, advance, same_as_rest, until

CANDLES = "/api/v1/market/candles"


def ws(sx: SimexServer) -> KucoinStreams:
    assert sx.kucoin_ws is not None
    return sx.kucoin_ws


@pytest.fixture
async def feed() -> AsyncIterator[Feed]:
    with SimexServer(speed=0, start_ms=START, ws_push_interval=0.02) as sx:
        f = Feed(sx, "kucoin")
        try:
            yield f
        finally:
            await f.source.stop()
            await f.venue.close()


async def test_kucoin_candles_arrive_over_the_stream_once_in_order_as_rest_has_them(feed: Feed) -> None:
    assert stream_exchange(feed.venue) is not None  # KuCoin is streamed, not polled
    await feed.venue.load_markets()
    feed.sx.admin.reset_requests()
    feed.source.start()
    await until(lambda: feed.source.streaming)
    await advance(feed.sx, 5)
    await until(lambda: len(feed.got) >= 5)
    assert feed.opens()[:5] == [START + i * 60_000 for i in range(5)]
    assert len(set(feed.opens())) == len(feed.opens())
    await same_as_rest(feed, 5)
    assert feed.source.streamed >= 3  # from the stream, not from the safety-net polls
    assert feed.sx.admin.request_count("/api/v1/bullet-public", "POST") == 1  # one token, one connection
    assert ws(feed.sx).topic_counts() == [1] and feed.source.sessions == 1


async def test_a_dropped_kucoin_stream_polls_then_back_fills_without_gap_or_duplicate(feed: Feed) -> None:
    feed.source.start()
    await until(lambda: feed.source.streaming)
    await advance(feed.sx, 2)
    await until(lambda: len(feed.got) >= 2)
    polls = feed.sx.admin.request_count(CANDLES)
    for _ in range(3):  # cut it while the clock moves on: the candles of the drop come from REST
        ws(feed.sx).drop_all()
        await advance(feed.sx, 1)
    await until(lambda: feed.source.sessions >= 2 and feed.source.streaming)
    # back-filled on return (and polled while down, unless ccxt's own redial brought the
    # stream back first: both count as a return); the gap and duplicate checks below are
    # what must hold either way
    assert feed.sx.admin.request_count(CANDLES) >= polls + 1
    await advance(feed.sx, 2)
    await until(lambda: len(feed.got) >= 7)
    assert feed.opens()[:7] == [START + i * 60_000 for i in range(7)]
    assert len(set(feed.opens())) == len(feed.opens())
    await same_as_rest(feed, 7)


async def test_an_expired_token_is_replaced_and_the_stream_comes_back() -> None:
    with SimexServer(speed=0, start_ms=START, ws_push_interval=0.02) as sx:
        feed = Feed(sx, "kucoin")
        try:
            feed.source.start()
            await until(lambda: feed.source.streaming)
            await advance(sx, 2)
            await until(lambda: len(feed.got) >= 2)
            ws(sx).expire_tokens()
            ws(sx).drop_all()
            # Back one of two ways, both counted in ``sessions``: the watch waiting on the
            # socket fails, the session ends, a new object fetches a new token; or the drop
            # lands between two watches (more often on a loaded host), ccxt redials on the
            # next one with the old token and is told it expired, and the stream, subscribing
            # again on that object, makes ccxt fetch a new token (it forgot the old one), or
            # gives up the deaf socket after 3 candle closes. Polled meanwhile; the clock moves
            # on until then (a wait with the clock standing still would never see the latter).
            deadline = asyncio.get_running_loop().time() + 40
            while not (feed.source.streaming and feed.source.sessions >= 2):
                assert asyncio.get_running_loop().time() < deadline, "no new stream after the token expired"
                await advance(sx, 1)
                await asyncio.sleep(0.2)
            assert sx.admin.request_count("/api/v1/bullet-public", "POST") >= 2  # a new token was fetched
            count = len(feed.got)
            await advance(sx, 2)
            await until(lambda: len(feed.got) >= count + 2)
            assert feed.opens() == [START + i * 60_000 for i in range(len(feed.got))]  # no gap, no duplicate
        finally:
            await feed.source.stop()
            await feed.venue.close()


async def test_the_pool_keeps_kucoins_topic_limit_per_connection() -> None:
    """KuCoin's limits, not Binance's, decide how streams share a KuCoin connection: with a
    topic limit of 1, two pairs take two connections (Binance's 1,024 would take one)."""
    kucoin = StreamLimits(max_streams=1, messages_per_second=8.0, max_connections=30, connection_window=60.0)
    pool = StreamPool(StreamLimits(max_streams=1024), exchange_limits={"kucoin": kucoin})
    assert StreamPool().limits_for("kucoin") == KUCOIN_STREAM_LIMITS
    assert StreamPool().limits_for("binance").max_streams == 1024
    with SimexServer(speed=0, start_ms=START, ws_push_interval=0.02, kucoin_ws_max_topics=1) as sx:
        feeds = [Feed(sx, "kucoin", pool, pair) for pair in (PAIR, Pair("XRP", "ETH"))]  # simex's 1-minute markets
        try:
            for f in feeds:
                f.source.start()
            await until(lambda: all(f.source.streaming for f in feeds))
            assert ws(sx).topic_counts() == [1, 1] and pool.dials == 2
            assert all(c.limits is kucoin for c in pool.connections())
        finally:
            for f in feeds:
                await f.source.stop()
                await f.venue.close()


async def test_pairs_leased_while_the_token_is_fetched_share_one_dial() -> None:
    """KuCoin's object asks REST for a token before it dials: a second pair whose turn
    comes meanwhile (the token answer is slow here) rides the same dial, counted once."""
    pool = StreamPool()
    with SimexServer(speed=0, start_ms=START, ws_push_interval=0.02) as sx:
        sx.admin.add_fault("latency", path_prefix="/api/v1/bullet-public", value=0.6, times=1)
        feeds = [Feed(sx, "kucoin", pool, pair) for pair in (PAIR, Pair("XRP", "ETH"))]
        try:
            for f in feeds:
                f.source.start()
            await until(lambda: all(f.source.streaming for f in feeds))
            assert ws(sx).topic_counts() == [2] and ws(sx).accepted == 1
            assert pool.dials == 1 and sx.admin.request_count("/api/v1/bullet-public", "POST") == 1
        finally:
            for f in feeds:
                await f.source.stop()
                await f.venue.close()



class _Deaf:
    """A ccxt.pro object whose socket takes subscriptions and never answers them (as
    ccxt's reader does once it died on KuCoin's "token is expired" after a redial)."""

    id = "kucoin"

    def __init__(self) -> None:
        self.clients: dict[str, object] = {}
        self.closed = False

    def open(self) -> None:
        pass

    async def watch_ohlcv(self, symbol: str, timeframe: str) -> list[list[object]]:
        self.clients.setdefault("ws", object())
        await asyncio.Event().wait()  # never answered; a close of the object cancels the watch
        raise AssertionError("unreachable")

    async def close(self) -> None:
        self.closed = True


@contextlib.asynccontextmanager
async def _two_pairs(fake: type[_Deaf], made: list[_Deaf]) -> AsyncIterator[tuple[SimexServer, StreamPool,
                                                                                list[Feed]]]:
    """BTC/USDT and XRP/ETH streamed, started, through one pool whose stream objects are
    ``fake`` ones (each appended to ``made``); stopped and closed afterwards."""

    def factory() -> _Deaf:
        made.append(fake())
        return made[-1]

    pool = StreamPool()
    with SimexServer(speed=0, start_ms=START) as sx:
        feeds = [Feed(sx, "kucoin", pool, pair) for pair in (PAIR, Pair("XRP", "ETH"))]
        for f in feeds:
            f.source._factory = factory
        try:
            for f in feeds:
                f.source.start()
            yield sx, pool, feeds
        finally:
            for f in feeds:
                await f.source.stop()
                await f.venue.close()


async def test_a_subscription_never_answered_retires_its_connection_for_every_pair_on_it() -> None:
    """Two pairs share one connection whose subscriptions are never answered: each is
    polled meanwhile (REST), and once its turn came and STALE_AFTER candles closed unanswered the
    connection is retired from the pool and closed, so both pairs lease a fresh one
    (without the retirement each gave up alone and leased the same dead socket again,
    forever, as long as the other pair kept it in the pool)."""
    made: list[_Deaf] = []
    async with _two_pairs(_Deaf, made) as (sx, pool, feeds):
        await until(lambda: len(made) == 1 and made[0].clients != {})
        first = made[0]
        deadline = asyncio.get_running_loop().time() + 30
        while not first.closed:  # candles close, unanswered: polled meanwhile, then given up
            assert asyncio.get_running_loop().time() < deadline, "the dead connection was never retired"
            await advance(sx, 1)
            await asyncio.sleep(0.1)
        await until(lambda: len(made) >= 2 and all(f.source._conn is not None and f.source._conn.exchange
                                                   is not first for f in feeds), 10)
        assert first not in [c.exchange for c in pool.connections()]



class _HalfDeaf(_Deaf):
    """Answers BTC/USDT (a row every few ms), never XRP/ETH: a quiet pair on a live socket."""

    async def watch_ohlcv(self, symbol: str, timeframe: str) -> list[list[object]]:
        if symbol != "BTC/USDT":
            return await super().watch_ohlcv(symbol, timeframe)
        self.clients.setdefault("ws", object())
        await asyncio.sleep(0.02)
        return [[START, "1", "1", "1", "1", "1"]]


async def test_a_quiet_pair_gives_up_alone_on_a_connection_other_pairs_still_hear_from() -> None:
    """A pair unanswered past STALE_AFTER candle closes while another pair on the same
    connection keeps getting rows: only its own session fails; the connection stays."""
    made: list[_Deaf] = []
    async with _two_pairs(_HalfDeaf, made) as (sx, _pool, feeds):
        await until(lambda: feeds[0].source.streaming)
        for _ in range(8):  # 8 candle closes: the quiet pair gives up (after 3) and tries again
            await advance(sx, 1)
            await asyncio.sleep(0.3)
        assert len(made) == 1 and not made[0].closed  # never retired: BTC/USDT kept it alive
        assert feeds[0].source.streaming and feeds[0].source.sessions == 1
        assert not feeds[1].source.streaming


class _Redialling(_Deaf):
    """Answers every watch (a row every few ms), from its third on a new socket: the object
    as ccxt.pro leaves it when a drop lands between two watches and it redials on the next."""

    def __init__(self) -> None:
        super().__init__()
        self.watches = 0

    async def watch_ohlcv(self, symbol: str, timeframe: str) -> list[list[object]]:
        self.watches += 1
        if self.watches == 3:
            self.clients = {"ws (redialled)": object()}
        self.clients = self.clients or {"ws": object()}
        await asyncio.sleep(0.02)
        return [[START, "1", "1", "1", "1", "1"]]


async def test_a_stream_back_on_a_socket_ccxt_redialled_inside_the_session_counts_as_a_reconnect() -> None:
    """The stream subscribes again on the socket ccxt redialled by itself, in the same session:
    ``sessions`` counts that return as it counts a new session's (before, only sessions were
    counted, and a wait for the stream to come back after a drop that landed between two
    watches waited for good: the expired-token test failed so under load)."""
    made: list[_Deaf] = []

    def factory() -> _Deaf:
        made.append(_Redialling())
        return made[-1]

    with SimexServer(speed=0, start_ms=START) as sx:
        feed = Feed(sx, "kucoin")
        feed.source._factory = factory
        try:
            feed.source.start()
            await until(lambda: bool(made) and isinstance(made[0], _Redialling) and made[0].watches >= 6)
            assert len(made) == 1 and not made[0].closed  # one session, one object: ccxt's own redial
            assert feed.source.streaming and feed.source.sessions == 2
        finally:
            await feed.source.stop()
            await feed.venue.close()



class _LateOnRedial(_Deaf):
    """Rows of candles opened at START, +1, +2 minutes (values 1, as the candle last looked
    on the old socket), the market clock moved a minute at the second and fourth watch; at the
    third the socket changes (ccxt's own redial) and its first answer comes only after that
    watch timed out: the fourth's rows are ccxt's cache, the second candle half-seen on the
    old socket beside the new forming one."""

    def __init__(self, sx: SimexServer) -> None:
        super().__init__()
        self.sx, self.watches = sx, 0

    async def watch_ohlcv(self, symbol: str, timeframe: str) -> list[list[object]]:
        self.watches += 1
        self.clients = self.clients or {"ws": object()}
        if self.watches in (2, 4):
            self.sx.admin.set_clock(advance_seconds=60)  # a candle closes
        if self.watches == 3:  # redialled; unanswered past the source's interval: cancelled
            self.clients = {"ws (redialled)": object()}
            await asyncio.Event().wait()
        await asyncio.sleep(0.02)
        return [[START + i * 60_000, "1", "1", "1", "1", "1"] for i in range(min(self.watches, 3))]


async def test_a_candle_half_seen_before_a_redial_is_not_published_when_the_new_socket_answers_late() -> None:
    """The first rows on a socket ccxt redialled (the watch that redialled timed out first)
    are new-socket rows: only the newest is kept, what closed before it comes from REST.
    Before, the oldest cached row became the forming candle and the candle last seen on the
    old socket was published from the stream as closed, with the values it had then."""
    made: list[_LateOnRedial] = []
    with SimexServer(speed=0, start_ms=START) as sx:
        feed = Feed(sx, "kucoin")

        def factory() -> _LateOnRedial:
            made.append(_LateOnRedial(sx))
            return made[-1]

        feed.source._factory = factory
        try:
            feed.source.start()
            await until(lambda: bool(made) and made[0].watches >= 6 and len(feed.got) >= 2)
            assert feed.opens()[:2] == [START, START + 60_000] and len(made) == 1
            rest = await feed.venue.fetch_candles(PAIR, "1m", since=feed.got[1].open_time, limit=1)
            got = feed.got[1]
            assert (got.open, got.high, got.low, got.close, got.volume) == (
                rest[0].open, rest[0].high, rest[0].low, rest[0].close, rest[0].volume)  # REST's, not the stale row
        finally:
            await feed.source.stop()
            await feed.venue.close()
