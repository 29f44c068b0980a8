"""ccxt's request throttle, set to the window the exchange itself counts requests in.

ccxt prices every endpoint in cost units relative to the exchange's ``rateLimit``
(milliseconds per unit): Binance's ``rateLimit`` is 50 ms and an endpoint of request
weight ``w`` costs ``0.2 * w`` ("1 IP (api) => cost = 0.2 => (1000 / (50 * 0.2)) * 60 =
6000", ccxt ``binance.py``), so one unit per 50 ms is exactly Binance's 6,000 weight per
minute. What ccxt does *not* match by default is the shape: its ``leakyBucket`` has
``capacity`` 1 (``init_rest_rate_limiter`` in ccxt's ``base/exchange.py``), so every
request of one exchange object waits until the previous one's cost has leaked out. A
balance fetch (``GET /api/v3/account``, weight 20, cost 4) holds the order placed after
it for 200 ms, although the exchange would take 6,000 weight in that minute at once.

ccxt also ships ``rateLimiterAlgorithm = "rollingWindow"``: at most
``rollingWindowSize / rateLimit`` units in any ``rollingWindowSize`` ms
(``base/throttler.py``, ``rolling_window_loop``; documented in ccxt's example
"exchange-rate-limiter-rollingWindow"), with the window each exchange class declares:
60,000 ms for Binance, 30,000 ms for KuCoin. That is the exchange's own rule:

* Binance spot counts ``REQUEST_WEIGHT`` 6,000 per ``MINUTE`` per IP, in windows that
  start every minute (developers.binance.com/docs/binance-spot-api-docs/rest-api/limits,
  and the ``rateLimits`` of ``exchangeInfo``). A rolling minute of 6,000 is never more
  than a fixed minute of 6,000 allows, so a burst up to a minute's weight goes out
  at once and sustained overuse waits, without ever drawing a 429 by itself.
* KuCoin: 4,000 per 30 s for a VIP0 spot account (ccxt ``kucoin.py``: ``rateLimit``
  7.5 ms, "4000 requests per 30 seconds (VIP0 for spot)",
  www.kucoin.com/docs-new/rate-limit), costs in the exchange's own quota units.

Other exchanges keep ccxt's default bucket: their limits are per endpoint per second
(Bybit) or ccxt reports that the rolling window draws rate-limit errors (OKX sets
``rollingWindowSize`` 0).

What one ccxt object cannot see is left to the engine (``engine/budget.py``): request
weight is counted per IP across every account behind it, and Binance's order count
(50 per 10 s and 160,000 per day per account, ``GET /api/v3/rateLimit/order``) is a
separate limit from weight. The engine draws both from shared budgets with a margin
before a request reaches ccxt; this throttle is the per-account backstop, also for
the calls made outside the engine (linking a key, downloads).
"""

from __future__ import annotations

from typing import Any, Final

# Request weight the exchange allows per ccxt ``rollingWindowSize`` of its class.
PUBLISHED_WEIGHT_PER_WINDOW: Final[dict[str, int]] = {"binance": 6000, "kucoin": 4000}


def throttle_config(exchange_id: str) -> dict[str, Any]:
    """ccxt constructor settings: throttle on, and a rolling window where the exchange
    counts its limit in one (see the module docstring)."""
    config: dict[str, Any] = {"enableRateLimit": True}
    if exchange_id in PUBLISHED_WEIGHT_PER_WINDOW:
        config["rateLimiterAlgorithm"] = "rollingWindow"
    return config


def set_weight_per_window(exchange: Any, weight: int) -> None:
    """Give ``exchange`` (a ccxt object built with ``throttle_config``) a limit other than
    the published one, e.g. a VIP tier or a simulator configured otherwise.

    ccxt derives the window's capacity as ``rollingWindowSize / rateLimit`` units, so the
    limit is set by scaling the class's own ``rateLimit``, then the throttler is rebuilt
    the way ccxt builds it (``init_rest_rate_limiter``; a ``tokenBucket`` left set would
    win)."""
    published = PUBLISHED_WEIGHT_PER_WINDOW.get(exchange.id)
    if published is None:
        raise ValueError(f"{exchange.id}: no published request window to scale")
    if weight <= 0:
        raise ValueError("the weight per window must be positive")
    exchange.rateLimit = exchange.describe()["rateLimit"] * published / weight
    exchange.tokenBucket = None
    exchange.init_rest_rate_limiter()


def window_capacity(exchange: Any) -> tuple[float, float]:
    """(window in ms, cost units it holds) of a rolling-window throttle; for checks."""
    config = exchange.throttler.config
    if config["algorithm"] != "rollingWindow":
        raise ValueError(f"{exchange.id}: the throttle is not a rolling window")
    return float(config["windowSize"]), float(config["maxWeight"])
