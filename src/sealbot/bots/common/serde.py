"""JSON-safe dump/load of a bot's frozen state (dataclasses and ``msgspec`` structs).

The engine persists state between restarts, so every state type must survive a trip
through JSON: Decimals become strings (never floats), datetimes ISO 8601 text, enums
their value, tuples lists, nested dataclasses dicts. One generic walker driven by the
type hints serves every bot, so a new state field cannot be forgotten; the states the
engine saves on every step of a DCA bot or smart trade go through msgspec instead
(``dump_struct``: the same rules, in C), and load from either dump.
"""

from __future__ import annotations

import dataclasses
import operator
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any, TypeVar

import msgspec
from msgspec import Struct

from sealbot.domain.market import Pair

T = TypeVar("T")

JsonValue = Any  # str | int | bool | None | list | dict: JSON has no precise static type here


def dump_dataclass(value: object) -> dict[str, JsonValue]:
    """A JSON-safe dict of a dataclass instance."""
    out = _dump(value)
    if not isinstance(out, dict):
        raise TypeError("dump_dataclass expects a dataclass instance")
    return out


@cache
def _field_names(cls: type) -> tuple[str, ...] | None:
    """Field names of a plain dataclass or struct type; None for anything else (Pair, enums...)."""
    if cls is Pair or issubclass(cls, Enum):
        return None
    if issubclass(cls, Struct):
        return cls.__struct_fields__
    if not dataclasses.is_dataclass(cls):
        return None
    return tuple(f.name for f in dataclasses.fields(cls))


_ATOMS = frozenset({str, int, bool, type(None)})


def _dump(value: object) -> JsonValue:
    # The engine dumps a bot's state on every step it takes (on a candle burst, thousands
    # in a row), so exact types are answered first and each dataclass type gets its own
    # compiled dumper (``_dumper``), which answers its fields' common types inline.
    tp: type = type(value)
    if tp in _ATOMS:
        return value
    if tp is Decimal:
        return str(value)
    if tp is tuple or tp is list:
        return [_dump(item) for item in value]  # type: ignore[attr-defined]
    dumper = _DUMPERS.get(tp, _UNSEEN)
    if dumper is _UNSEEN:
        dumper = _DUMPERS[tp] = _dumper(tp)
    if dumper is not None:
        return dumper(value)  # type: ignore[operator]
    return _dump_other(value)


_UNSEEN = object()
_DUMPERS: dict[type, object] = {}  # type -> its compiled dumper, or None: not a plain dataclass
_COMPILING: set[type] = set()


def _dumper(cls: type) -> Callable[[Any], JsonValue] | None:
    """What the walk does with a value of exactly this type, as one function: an enum's
    value, a datetime's ISO text, a pair's symbol; for a dataclass, a compiled function: per field, a
    ``None``/``str``/``int``/``bool`` is kept, a ``Decimal`` becomes its string, anything
    else goes through ``_dump`` (so the result is the same whatever the field holds)."""
    names = _field_names(cls)
    if names is None:
        if issubclass(cls, Enum):
            return operator.attrgetter("_value_")  # what ``.value`` returns, without the descriptor
        if cls is datetime:
            return datetime.isoformat
        return operator.attrgetter("symbol") if cls is Pair else None
    scope: dict[str, Any] = {"atoms": _ATOMS, "decimal": Decimal, "dump": _dump, "datetime": datetime}
    _COMPILING.add(cls)  # a field of its own type (a recursive dataclass) takes the walk
    try:
        fields = [_field_expr(f"x{i}", hint, scope) for i, hint in enumerate(_declared(cls, names))]
    finally:
        _COMPILING.discard(cls)
    lines = [f"    x{i} = v.{name}" for i, name in enumerate(names)]
    items = ", ".join(f"{name!r}: {expr}" for name, expr in zip(names, fields, strict=True))
    source = "def dump_one(v):\n" + "\n".join(lines) + f"\n    return {{{items}}}\n"
    exec(compile(source, f"<dump {cls.__qualname__}>", "exec"), scope)  # noqa: S102 - names only from dataclasses.fields
    return typing.cast(Callable[[Any], JsonValue], scope["dump_one"])


def _declared(cls: type, names: tuple[str, ...]) -> list[Any]:
    """The fields' declared types (``Any`` where the hints cannot be resolved)."""
    try:
        hints = _hints(cls)
    except (NameError, TypeError):
        return [Any] * len(names)
    return [hints.get(name, Any) for name in names]


def _field_expr(x: str, hint: Any, scope: dict[str, Any]) -> str:
    """The expression dumping variable ``x``: atoms and Decimals inline, then one fast
    path for the field's declared type (guarded by the value's exact type, so a field
    holding something else still takes the walk)."""
    inline = f"{x} if type({x}) in atoms else str({x}) if type({x}) is decimal else "
    kinds = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) in (
        typing.Union, types.UnionType) else [hint]
    if len(kinds) == 1:
        kind = kinds[0]
        if typing.get_origin(kind) is tuple:
            return inline + f"[dump(i) for i in {x}] if type({x}) is tuple else dump({x})"
        if kind is datetime:
            return inline + f"{x}.isoformat() if type({x}) is datetime else dump({x})"
        if isinstance(kind, type) and issubclass(kind, Enum):
            name = f"t{len(scope)}"
            scope[name] = kind
            return inline + f"{x}._value_ if type({x}) is {name} else dump({x})"
        if isinstance(kind, type) and _field_names(kind) is not None and kind not in _COMPILING:
            name = f"t{len(scope)}"
            scope[name], scope[f"d{name}"] = kind, _dumper(kind)
            return inline + f"d{name}({x}) if type({x}) is {name} else dump({x})"
    return inline + f"dump({x})"


def _dump_other(value: object) -> JsonValue:
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
    if isinstance(value, Struct) or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        names = _field_names(type(value))
        assert names is not None
        return {name: _dump(getattr(value, name)) for name in names}
    if isinstance(value, tuple | list):
        return [_dump(item) for item in value]
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dump_struct(value: Struct) -> dict[str, JsonValue]:
    """A bot state that is a ``msgspec`` struct, dumped by msgspec in C: three to four
    times faster than the walk, and the engine dumps a state on every step it takes.
    Decimals become strings, datetimes RFC 3339 text, enums their value, structs and
    dataclasses objects (a ``Pair`` inside a domain dataclass too: ``{"base", "quote"}``,
    not the walk's symbol), tuples stay tuples (JSON arrays once stored)."""
    out = msgspec.to_builtins(value)
    if not isinstance(out, dict):
        raise TypeError("dump_struct expects a struct instance")
    return out


def load_struct(cls: type[T], data: dict[str, JsonValue]) -> T:
    """Rebuild a state ``dump_struct`` wrote, or one the walk (``dump_dataclass``) wrote
    before the state moved to it: their one difference, a pair as a symbol, is left to
    the walk."""
    _known_fields(cls, data)
    try:
        return msgspec.convert(data, cls)
    except msgspec.ValidationError:
        return load_dataclass(cls, data)


def _known_fields(tp: type, data: Mapping[str, Any]) -> None:
    """A stored state with fields its type does not have was written by another version
    (or is not this bot's): refused, never loaded as a fresh state with the rest dropped,
    which would have the bot start over beside the deals it already has."""
    unknown = set(data) - set(_field_names(tp) or ())
    if unknown:
        raise ValueError(f"{tp.__name__}: unknown fields {', '.join(sorted(unknown))} (written by another version?)")


def load_dataclass(cls: type[T], data: dict[str, JsonValue]) -> T:
    """Rebuild a dataclass of type ``cls`` from ``dump_dataclass`` output."""
    loaded = _load(cls, data)
    return typing.cast(T, loaded)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _load(tp: Any, data: JsonValue) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if data is None:
            return None
        if len(args) != 1:
            raise TypeError(f"cannot load ambiguous union {tp}")
        return _load(args[0], data)
    if origin is tuple:
        (item_type, *_rest) = typing.get_args(tp)
        return tuple(_load(item_type, item) for item in data)
    if origin is list:
        (item_type,) = typing.get_args(tp)
        return [_load(item_type, item) for item in data]
    if tp is Decimal:
        return Decimal(data)
    if tp is datetime:
        return datetime.fromisoformat(data)
    if tp is Pair:
        return Pair.parse(data)
    if tp in (int, str, bool):
        return tp(data)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(data)
    if isinstance(tp, type) and (issubclass(tp, Struct) or dataclasses.is_dataclass(tp)):
        hints = _hints(tp)
        names = _field_names(tp) or ()
        _known_fields(tp, data)
        return tp(**{name: _load(hints[name], data[name]) for name in names if name in data})
    raise TypeError(f"cannot load {tp}")
