"""Run simex: in a background thread for tests and the demo, or in the foreground for the CLI."""

from __future__ import annotations

import secrets
import socket
import sys
import threading
import time
from decimal import Decimal
from types import TracebackType
from typing import Any

import uvicorn

from sealbot.simex.admin_client import SimexAdmin
from sealbot.simex.app import SimexConfig, build
from sealbot.simex.core import Exchange
from sealbot.simex.ws_api_binance import BinanceWsApi
from sealbot.simex.ws_binance import BinanceStreams
from sealbot.simex.ws_kucoin import KucoinStreams

# Binance pings every stream connection each 20 s and drops it after a minute without a pong
WS_PINGS: dict[str, Any] = {"ws_ping_interval": 20.0, "ws_ping_timeout": 60.0}


class SimexServer:
    """Context manager: uvicorn on a free 127.0.0.1 port in a daemon thread.

    >>> with SimexServer(speed=0) as sx:
    ...     account = sx.admin.create_account("alice", {"USDT": "1000"})
    ...     key = sx.admin.create_key(account["id"])
    ...     sx.base_url  # 'http://127.0.0.1:<port>'
    """

    def __init__(self, admin_token: str | None = None, host: str = "127.0.0.1", port: int = 0,
                 **config: Any) -> None:
        self.admin_token = admin_token or secrets.token_urlsafe(24)
        self.config = SimexConfig(admin_token=self.admin_token, **config)
        self.host, self._port = host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.exchange: Exchange | None = None
        self.streams: BinanceStreams | None = None  # the market-data websocket (drop_all: a fault)
        self.ws_api: BinanceWsApi | None = None  # the WebSocket API's user-data streams (drop_all: a fault)
        self.kucoin_ws: KucoinStreams | None = None  # KuCoin's websocket, public and private (drop_all: a fault)
        self.base_url = ""
        self.admin: SimexAdmin

    def __repr__(self) -> str:
        return f"SimexServer(base_url={self.base_url!r})"

    def start(self) -> SimexServer:
        app, self.exchange, _ = build(self.config)
        self.streams, self.ws_api = app.state.binance_streams, app.state.binance_ws_api
        self.kucoin_ws = app.state.kucoin_streams
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, backlog=4096,
                                timeout_keep_alive=30, timeout_graceful_shutdown=1, **WS_PINGS)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True,
                                        name=f"simex-{port}")
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("simex did not start")
            time.sleep(0.01)
        self.base_url = f"http://{self.host}:{port}"
        self.admin = SimexAdmin(self.base_url, self.admin_token)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # do not wait for requests hung by a timeout fault
        if self._thread is not None:
            self._thread.join(timeout=10)
        if hasattr(self, "admin"):
            self.admin.close()

    def __enter__(self) -> SimexServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def run_simex(host: str = "127.0.0.1", port: int = 8001, speed: float = 1.0, admin_token: str | None = None,
              start_ms: int | None = None, spread_ticks: int = 1, maker_fee: str = "0.001",
              taker_fee: str = "0.001", weight_limit: int = 6000, kucoin_limit: int = 4000,
              log_level: str = "info") -> None:
    """Serve simex in the foreground until interrupted (``sealbot simex``).

    Without ``admin_token`` a random one is generated and printed once on stderr.
    """
    token = admin_token or secrets.token_urlsafe(24)
    if admin_token is None:
        print(f"simex admin token: {token}", file=sys.stderr)
    app, _, _ = build(SimexConfig(admin_token=token, speed=speed, start_ms=start_ms, spread_ticks=spread_ticks,
                                  maker_fee=Decimal(maker_fee), taker_fee=Decimal(taker_fee),
                                  weight_limit=weight_limit, kucoin_limit=kucoin_limit))
    uvicorn.run(app, host=host, port=port, log_level=log_level, lifespan="off", backlog=4096,
                access_log=log_level == "debug", **WS_PINGS)
