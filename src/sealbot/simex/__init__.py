"""simex: a local exchange that speaks Binance's and KuCoin's spot REST dialects.

It imports nothing from the rest of sealbot on purpose: it plays the part of an
independent exchange, so no shared code can hide a mismatch between a client and
the exchange it talks to. See docs/simex.md.
"""

from sealbot.simex.server import SimexServer, run_simex

__all__ = ["SimexServer", "run_simex"]
