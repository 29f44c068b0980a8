"""Point an unmodified ccxt client at a simex server (test helper).

Two ways, both used by the tests:

* sandbox: copy ``urls['api']`` with scheme+host replaced by simex's base URL into
  ``urls['test']`` and call ``set_sandbox_mode(True)``; ccxt then skips the calls it
  knows a testnet lacks (Binance margin pairs, currencies);
* override: replace ``urls['api']`` itself, so ccxt behaves exactly as against the
  real exchange (Binance also calls /sapi/v1/margin/*allPairs and
  /sapi/v1/capital/config/getall while loading markets with a key set).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def rebase_urls(node: Any, base_url: str) -> Any:
    """Same tree of URLs, every scheme+host replaced by ``base_url``, paths kept."""
    if isinstance(node, str):
        if "://" not in node:
            return node
        parts = urlsplit(node)
        return base_url.rstrip("/") + parts.path
    if isinstance(node, dict):
        return {k: rebase_urls(v, base_url) for k, v in node.items()}
    return node


def point_at_simex(exchange: Any, base_url: str, sandbox: bool = True) -> Any:
    rebased = rebase_urls(exchange.urls["api"], base_url)
    if sandbox:
        exchange.urls["test"] = rebased
        exchange.set_sandbox_mode(True)
    else:
        exchange.urls["api"] = rebased
    return exchange


def away_from_window_edge(window_s: int, margin_s: float = 8.0) -> None:
    """Sleep into the next rate-limit window if the current one ends within ``margin_s``.

    Rate-limit windows are wall-clock minutes (Binance) or 30 s (KuCoin pools); a test that
    counts weight must not straddle a window boundary.
    """
    import time

    left = window_s - time.time() % window_s
    if left < margin_s:
        time.sleep(left + 0.05)
