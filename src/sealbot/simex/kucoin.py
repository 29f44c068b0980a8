"""KuCoin spot dialect (filled in below)."""

from __future__ import annotations

from starlette.routing import Route

from sealbot.simex.core import Exchange


class KucoinDialect:
    def __init__(self, exchange: Exchange) -> None:
        self.ex = exchange

    def routes(self) -> list[Route]:
        return []
