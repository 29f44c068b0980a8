"""The errors sealbot raises on purpose, each saying which thing failed and why.

The web layer maps them to HTTP statuses (422 for InvalidConfig, 404 for NotFound,
403 for Refused); the CLI prints the one line and exits 2. Messages never carry a
secret: callers pass field names and reasons, not values.
"""

from __future__ import annotations


class SealbotError(Exception):
    """Base of every error sealbot raises deliberately."""


class InvalidConfig(SealbotError):
    """A setting that cannot work, named by its path (e.g. ``safety_orders.3.deviation``)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


class NotFound(SealbotError):
    """A thing that does not exist *for this caller*; another owner's row is never found."""

    def __init__(self, kind: str, ident: object) -> None:
        super().__init__(f"{kind} {ident} not found")
        self.kind, self.ident = kind, ident


class Refused(SealbotError):
    """A policy said no (custody, guard, permission check); ``reason`` says which rule."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"refused by {rule}: {reason}")
        self.rule, self.reason = rule, reason


class OrderRejected(SealbotError):
    """An order that the market's rules (precision, min notional) or the exchange rejected."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason
