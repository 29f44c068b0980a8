"""The compiled per-class state dumpers give exactly what the plain walk gives.

The walk is the spec (``sealbot.bots.common.serde``): Decimals become strings, datetimes
ISO 8601, enums their value, pairs their symbol, tuples and lists lists, dataclasses
dicts, whatever type a field happens to hold at run time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sealbot.bots import dca
from sealbot.bots.common.serde import dump_dataclass, load_dataclass
from sealbot.domain import Candle
from sealbot.domain.market import Direction, Pair

from .test_dca_properties import PROPS, configs, go, price_paths


def walk(value: Any) -> Any:
    if value is None or (isinstance(value, bool | int | str) and not isinstance(value, Enum)):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Pair):
        return value.symbol
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: walk(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [walk(item) for item in value]
    raise TypeError(type(value))


@dataclass(frozen=True)
class Inner:
    amount: Decimal | int | None
    side: Direction | None = None


@dataclass(frozen=True)
class Outer:
    at: datetime | None
    pair: Pair | None
    items: tuple[Inner, ...]
    extra: Any = None


leaves = (st.none() | st.booleans() | st.integers() | st.text(max_size=5)
          | st.decimals(allow_nan=False, allow_infinity=False, places=4)
          | st.datetimes(timezones=st.just(UTC)) | st.sampled_from(list(Direction))
          | st.just(Pair("BTC", "USDT")))
inners = st.builds(Inner, amount=leaves, side=leaves)
outers = st.builds(Outer, at=leaves, pair=leaves, items=st.lists(inners, max_size=3).map(tuple),
                   extra=leaves | inners | st.lists(leaves, max_size=3).map(tuple))


@given(value=outers)
def test_the_compiled_dumper_equals_the_walk_whatever_the_fields_hold(value: Outer) -> None:
    assert dump_dataclass(value) == walk(value)


@PROPS
@given(cfg=configs(), bars=price_paths(length=40))
def test_every_dca_state_dumps_as_the_walk_does_and_loads_back(cfg: dca.DcaConfig, bars: list[Candle]) -> None:
    for state in go(cfg, bars).states:
        dumped = dca.dump_state(state)
        assert dumped == walk(state)
        assert load_dataclass(dca.DcaState, dumped) == state


@dataclass(frozen=True)
class Node:
    label: Direction
    child: Node | None = None


def test_a_recursive_dataclass_dumps_as_the_walk_does() -> None:
    tree = Node(Direction.LONG, Node(Direction.SHORT, Node(Direction.LONG)))
    assert dump_dataclass(tree) == walk(tree)
