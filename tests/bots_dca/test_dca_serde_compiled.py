"""The compiled per-class dumpers give exactly what the plain walk gives; a DCA state,
dumped by msgspec since, loads back from that dump and from the walk's (earlier versions).

The walk is the spec (``sealbot.bots.common.serde``): Decimals become strings, datetimes
ISO 8601, enums their value, pairs their symbol, tuples and lists lists, dataclasses
and msgspec structs dicts, whatever type a field happens to hold at run time.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from msgspec import Struct

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
    if isinstance(value, Struct):
        return {name: walk(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, tuple | list):
        return [walk(item) for item in value]
    raise TypeError(type(value))


class Inner(Struct, frozen=True):  # a struct inside a dataclass, as a bot's Deal sits in its Position
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


def floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in floats(v)]
    if isinstance(value, list | tuple):
        return [f for v in value for f in floats(v)]
    return []


@PROPS
@given(cfg=configs(), bars=price_paths(length=40))
def test_every_dca_state_loads_back_from_its_dump_and_from_the_walk_earlier_versions_stored(
        cfg: dca.DcaConfig, bars: list[Candle]) -> None:
    for state in go(cfg, bars).states:
        dumped = dca.dump_state(state)
        assert floats(dumped) == []  # money is never a float, not even on its way to JSON
        assert dca.load_state(json.loads(json.dumps(dumped))) == state
        # states stored before they moved to msgspec (a pair as its symbol) still load
        assert dca.load_state(json.loads(json.dumps(walk(state)))) == state
        assert load_dataclass(dca.DcaState, walk(state)) == state
