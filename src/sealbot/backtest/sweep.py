"""Parameter sweeps: the same backtest over many variants of a config, on all cores.

``grid_space`` lists every combination; ``random_space`` draws ``n`` of them with a
seeded generator (same seed, same variants). ``sweep`` runs each variant through
``simulate.run`` in a process pool (``concurrent.futures``), calls ``progress(done,
total)`` as variants finish (the CLI draws a Rich bar with it) and ranks the results
by an objective (a ``Metrics`` field such as ``pnl`` or ``sharpe``, or a function),
best first; ties keep the variants' order, so the ranking is deterministic whatever
order the workers finish in. A variant whose parameters the config refuses is kept in
the table with its error, ranked last.

Parameter names are config field names; dotted names reach nested settings
(``fees.maker``). Pydantic configs are re-validated with each variant; a refusal is
an ``InvalidConfig`` naming the field.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import os
import random
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from decimal import Decimal
from types import ModuleType
from typing import Any

import pandas as pd

from sealbot.backtest.data import CandleArrays
from sealbot.backtest.metrics import Metrics
from sealbot.backtest.simulate import run
from sealbot.bots.common.validation import parse_config
from sealbot.domain import InvalidConfig, Pair, SealbotError

Params = dict[str, Any]
Objective = str | Callable[[Metrics], float | Decimal | None]
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Uniform:
    """A random-search range: values from ``low`` to ``high`` on multiples of ``step``."""

    low: Decimal
    high: Decimal
    step: Decimal

    def draw(self, rng: random.Random) -> Decimal:
        steps = int((self.high - self.low) / self.step)
        return self.low + self.step * rng.randint(0, steps)


def grid_space(space: Mapping[str, Sequence[Any]]) -> list[Params]:
    """Every combination of the listed values, in a stable order (first name slowest)."""
    names = list(space)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(space[n] for n in names))]


def random_space(space: Mapping[str, Sequence[Any] | Uniform], n: int, seed: int) -> list[Params]:
    """``n`` distinct variants drawn with ``random.Random(seed)`` (fewer if the space is smaller)."""
    rng = random.Random(seed)
    seen: set[tuple[Any, ...]] = set()
    out: list[Params] = []
    for _ in range(n * 20):
        if len(out) >= n:
            break
        params = {name: (dist.draw(rng) if isinstance(dist, Uniform) else rng.choice(list(dist)))
                  for name, dist in space.items()}
        key = tuple(params.values())
        if key not in seen:
            seen.add(key)
            out.append(params)
    return out


def with_params(config: Any, params: Mapping[str, Any]) -> Any:
    """A copy of ``config`` with ``params`` set (dotted names reach nested settings)."""
    for path, value in params.items():
        config = _set(config, path.split("."), value)
    return config


def check_names(config: Any, space: Mapping[str, Any]) -> None:
    """Refuse a space whose name is no setting of ``config`` (``InvalidConfig`` naming
    it): every variant would fail alike, so the sweep would only print a table of errors."""
    for path in space:
        obj = config
        for part in path.split("."):
            if isinstance(obj, Mapping):
                if part not in obj:
                    raise InvalidConfig(f"space.{path}", f"the config has no setting {part!r}")
                obj = obj[part]
                continue
            names = (type(obj).model_fields if hasattr(type(obj), "model_fields") and hasattr(obj, "model_dump")
                     else {f.name for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else ())
            if part not in names:
                raise InvalidConfig(f"space.{path}", f"the {type(obj).__name__} config has no setting {part!r}")
            obj = getattr(obj, part)


OBJECTIVES = frozenset(f.name for f in dataclasses.fields(Metrics)) - {"average_deal_duration"}


def check_objective(objective: Objective) -> None:
    """A named objective must be one of the ``Metrics`` numbers the ranking can sort by."""
    if isinstance(objective, str) and objective not in OBJECTIVES:
        raise InvalidConfig("objective", f"{objective!r} is not one of {', '.join(sorted(OBJECTIVES))}")


def _set(obj: Any, parts: list[str], value: Any) -> Any:
    name = parts[0]
    new = value if len(parts) == 1 else _set(_get(obj, name), parts[1:], value)
    if hasattr(obj, "model_validate") and hasattr(obj, "model_dump"):
        data = {key: getattr(obj, key) for key in type(obj).model_fields}
        if name not in data:
            raise KeyError(f"{type(obj).__name__} has no setting {name!r}")
        data[name] = new
        return parse_config(type(obj), data)  # InvalidConfig naming the field, like the web form
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{name: new})
    if isinstance(obj, Mapping):
        return {**obj, name: new}
    raise TypeError(f"cannot set {name!r} on a {type(obj).__name__}")


def _get(obj: Any, name: str) -> Any:
    return obj[name] if isinstance(obj, Mapping) else getattr(obj, name)


@dataclass(frozen=True, slots=True)
class SweepRow:
    rank: int
    index: int
    params: Params
    metrics: Metrics | None
    score: float | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SweepResult:
    objective: str
    rows: list[SweepRow]

    @property
    def best(self) -> SweepRow:
        return self.rows[0]

    def table(self) -> pd.DataFrame:
        """The ranked table: rank, the parameters, the score and the main figures."""
        records = []
        for row in self.rows:
            record: dict[str, Any] = {"rank": row.rank, **{k: _plain(v) for k, v in row.params.items()}}
            record["score"] = row.score
            if row.metrics is not None:
                m = row.metrics
                record |= {"pnl": float(m.pnl), "max_drawdown": m.max_drawdown, "deals": m.deals_closed,
                           "max_funds_used": float(m.max_funds_used), "sharpe": m.sharpe}
            record["error"] = row.error
            records.append(record)
        return pd.DataFrame.from_records(records)


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


# -- workers ---------------------------------------------------------------------------

_JOB: dict[str, Any] = {}


def _init_worker(kind_name: str, config: Any, candles: Mapping[Pair, Any], options: dict[str, Any]) -> None:
    _JOB.update(kind=importlib.import_module(kind_name), config=config, candles=candles, options=options)


def _run_variant(index: int, params: Params) -> tuple[int, Metrics | None, str | None]:
    try:
        config = with_params(_JOB["config"], params)
        result = run(_JOB["kind"], config, _JOB["candles"], **_JOB["options"])
    except (SealbotError, ValueError, KeyError, TypeError) as exc:  # a refused variant, kept with its reason
        return index, None, f"{type(exc).__name__}: {exc}"
    return index, result.metrics, None


def sweep(
    kind: ModuleType,
    config: Any,
    candles: Mapping[Pair, pd.DataFrame | CandleArrays],
    variants: Sequence[Params],
    *,
    objective: Objective = "pnl",
    workers: int | None = None,
    progress: Progress | None = None,
    **run_options: Any,
) -> SweepResult:
    """Backtest every variant and rank them, best first. ``workers=1`` runs in this
    process; the default uses every core. ``run_options`` go to ``simulate.run``."""
    check_objective(objective)
    workers = workers or os.cpu_count() or 1
    total = len(variants)
    outcomes: dict[int, tuple[Metrics | None, str | None]] = {}
    if workers == 1 or total <= 1:
        _init_worker(kind.__name__, config, candles, run_options)
        for i, params in enumerate(variants):
            _, metrics, error = _run_variant(i, params)
            outcomes[i] = (metrics, error)
            if progress:
                progress(len(outcomes), total)
    else:
        with ProcessPoolExecutor(
            max_workers=min(workers, total),
            initializer=_init_worker,
            initargs=(kind.__name__, config, candles, run_options),
        ) as pool:
            futures = [pool.submit(_run_variant, i, params) for i, params in enumerate(variants)]
            for future in as_completed(futures):
                i, metrics, error = future.result()
                outcomes[i] = (metrics, error)
                if progress:
                    progress(len(outcomes), total)
    name = objective if isinstance(objective, str) else getattr(objective, "__name__", "objective")
    scored = []
    for i, params in enumerate(variants):
        metrics, error = outcomes[i]
        score = _score(metrics, objective) if metrics is not None else None
        scored.append((i, params, metrics, score, error))
    scored.sort(key=lambda t: (t[3] is None, -(t[3] or 0.0), t[0]))
    rows = [SweepRow(rank, i, params, metrics, score, error)
            for rank, (i, params, metrics, score, error) in enumerate(scored, start=1)]
    return SweepResult(name, rows)


def _score(metrics: Metrics, objective: Objective) -> float | None:
    value = getattr(metrics, objective) if isinstance(objective, str) else objective(metrics)
    return None if value is None else float(value)
