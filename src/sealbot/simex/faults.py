"""Fault injection, per API key or global.

A rule says *what* goes wrong (``kind``), *to whom* (``key``: one API key, or every
caller when None), *where* (``path_prefix``: e.g. ``/api/v3/order``; None = every
exchange path; admin paths are never affected) and *how often* (``times``: the
next N matching requests, None = until cleared).

Kinds:

``latency``       wait ``value`` seconds, then answer normally.
``timeout``       hang ``value`` seconds (default 60) without answering: the client times out.
``error_5xx``     answer HTTP ``value`` (default 503) with no exchange body.
``rate_limit``    answer as the exchange does when the request weight is exceeded (429).
``partial_fill``  each fill of an order only takes ``value`` (0 < value < 1, default 0.5)
                  of the remaining quantity, rounded down to the lot step.
``reject``        new orders are rejected (Binance -2010 / KuCoin 400100).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from decimal import Decimal

KINDS = ("latency", "timeout", "error_5xx", "rate_limit", "partial_fill", "reject")
DEFAULTS = {"latency": Decimal("0.2"), "timeout": Decimal("60"), "error_5xx": Decimal("503"),
            "rate_limit": Decimal("0"), "partial_fill": Decimal("0.5"), "reject": Decimal("0")}


@dataclass
class FaultRule:
    kind: str
    key: str | None = None
    path_prefix: str | None = None
    value: Decimal = Decimal(0)
    times: int | None = None
    id: int = 0
    hits: int = field(default=0)

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "key": self.key, "path_prefix": self.path_prefix,
                "value": str(self.value), "times": self.times, "hits": self.hits}


class Faults:
    """The active fault rules; thread-safe."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._next = 1
        self._lock = threading.Lock()

    def add(self, kind: str, key: str | None = None, path_prefix: str | None = None,
            value: Decimal | str | float | None = None, times: int | None = None) -> FaultRule:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {list(KINDS)}")
        val = DEFAULTS[kind] if value is None else Decimal(str(value))
        if kind == "partial_fill" and not Decimal(0) < val < Decimal(1):
            raise ValueError("partial_fill value must be strictly between 0 and 1")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or null")
        with self._lock:
            rule = FaultRule(kind, key, path_prefix, val, times, self._next)
            self._next += 1
            self._rules.append(rule)
            return rule

    def clear(self, rule_id: int | None = None) -> None:
        with self._lock:
            self._rules = [] if rule_id is None else [r for r in self._rules if r.id != rule_id]

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def take(self, kinds: tuple[str, ...], key: str | None, path: str) -> FaultRule | None:
        """The first matching rule of one of ``kinds``, consuming one of its ``times``."""
        with self._lock:
            for rule in self._rules:
                if rule.kind not in kinds:
                    continue
                if rule.key is not None and rule.key != key:
                    continue
                if rule.path_prefix is not None and not path.startswith(rule.path_prefix):
                    continue
                rule.hits += 1
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                return rule
        return None
