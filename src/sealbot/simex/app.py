"""Assemble the ASGI app: Binance and KuCoin dialects plus the admin API on one Exchange."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from sealbot.simex.admin import AdminApi
from sealbot.simex.binance import BinanceDialect
from sealbot.simex.clock import MarketClock
from sealbot.simex.core import Exchange
from sealbot.simex.http import json_response
from sealbot.simex.kucoin import KucoinDialect
from sealbot.simex.markets import DEFAULT_MARKETS, MarketSpec
from sealbot.simex.ratelimit import WeightLimiter
from sealbot.simex.ws_api_binance import BinanceWsApi
from sealbot.simex.ws_binance import BinanceStreams, WsLimits
from sealbot.simex.ws_kucoin import KucoinStreams, KucoinWsLimits


@dataclass
class SimexConfig:
    """Every knob of a simex instance (see docs/simex.md)."""

    admin_token: str = field(repr=False)
    speed: float = 0.0
    start_ms: int | None = None
    spread_ticks: int = 1
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    weight_limit: int = 6000
    ban_after: int = 10
    ban_seconds: int = 120
    kucoin_limit: int = 4000
    ws_push_interval: float = 2.0  # real seconds between kline pushes on the websocket (Binance: 2 s)
    # Binance's market-data websocket limits (docs/simex.md): streams per connection, incoming
    # messages per window per connection, new connections per window per IP
    ws_max_streams: int = 1024
    ws_max_messages: int = 5
    ws_message_window: float = 1.0  # seconds
    ws_max_connections: int = 300
    ws_connection_window: float = 300.0  # seconds
    # KuCoin's websocket (docs/simex.md): topics per connection and per subscribe, client
    # messages per window per connection, open connections per user, heartbeat, token life
    kucoin_ws_max_topics: int = 300
    kucoin_ws_max_batch: int = 100
    kucoin_ws_max_messages: int = 100
    kucoin_ws_message_window: float = 10.0  # seconds
    kucoin_ws_max_connections: int = 50
    kucoin_ws_ping_interval: float = 18.0  # seconds
    kucoin_ws_ping_timeout: float = 10.0  # seconds
    kucoin_ws_token_ttl: float = 86400.0  # seconds
    markets: Iterable[MarketSpec] = DEFAULT_MARKETS


def build(config: SimexConfig) -> tuple[Starlette, Exchange, WeightLimiter]:
    """The app and the state behind it (tests may inspect the Exchange directly)."""
    start = config.start_ms if config.start_ms is not None else int(time.time() // 60 * 60 * 1000)
    exchange = Exchange(MarketClock(start, config.speed), config.markets, config.spread_ticks,
                        config.maker_fee, config.taker_fee)
    limiter = WeightLimiter(config.weight_limit, config.ban_after, config.ban_seconds)
    kucoin_limiter = WeightLimiter(config.kucoin_limit, ban_after=10**9, window_s=30)
    kucoin_ws = KucoinStreams(exchange, config.ws_push_interval, KucoinWsLimits(
        config.kucoin_ws_max_topics, config.kucoin_ws_max_batch, config.kucoin_ws_max_messages,
        config.kucoin_ws_message_window, config.kucoin_ws_max_connections, config.kucoin_ws_ping_interval,
        config.kucoin_ws_ping_timeout, config.kucoin_ws_token_ttl))
    routes = (BinanceDialect(exchange, limiter).routes()
              + KucoinDialect(exchange, kucoin_limiter, kucoin_ws.bullet).routes()
              + AdminApi(exchange, limiter, config.admin_token, kucoin_limiter).routes())
    limits = WsLimits(config.ws_max_streams, config.ws_max_messages, config.ws_message_window,
                      config.ws_max_connections, config.ws_connection_window)
    streams = BinanceStreams(exchange, config.ws_push_interval, limits)  # Binance's market-data websocket

    async def not_found(request: Request, exc: Exception) -> Response:
        return json_response({"code": -1000, "msg": f"No such endpoint: {request.method} {request.url.path}"}, 404)

    app = Starlette(routes=[*routes, *streams.routes()], exception_handlers={404: not_found})
    app.state.binance_streams = streams  # SimexServer.streams: drop_all() cuts every stream
    BinanceWsApi(exchange).mount(app)  # Binance's WebSocket API user-data stream (app.state.binance_ws_api)
    kucoin_ws.mount(app)  # KuCoin's websocket: candles and order changes (app.state.kucoin_streams)
    return app, exchange, limiter
