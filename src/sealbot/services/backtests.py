"""Backtest use cases for the CLI and the dashboard: run a bot file over candle files,
sweep its parameters, download candles. The work itself lives in ``sealbot.backtest``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sealbot.backtest.download import download_from_exchange
from sealbot.backtest.fills import FeeCurrency
from sealbot.backtest.metrics import Result
from sealbot.backtest.runner import read_space, run_backtest_file, run_sweep_file
from sealbot.backtest.sweep import SweepResult
from sealbot.domain.market import Pair

Progress = Callable[[int, int], None]
FEE_CURRENCIES = tuple(c.value for c in FeeCurrency)  # where an exchange takes fees: received, quote, base


def backtest(bot_file: Path, data: Sequence[str], *, report: Path | None = None, json_out: Path | None = None,
             signals: Path | None = None, timeframe: str | None = None, start: datetime | None = None,
             end: datetime | None = None, slippage: Decimal = Decimal(0),
             fee_currency: str = "received", balances: Mapping[str, Decimal] | None = None) -> Result:
    """``fee_currency`` is one of ``FEE_CURRENCIES``; ``balances`` models the account."""
    return run_backtest_file(bot_file, data, report_path=report, json_path=json_out, signals_path=signals,
                             timeframe=timeframe, start=start, end=end, slippage=slippage,
                             fee_currency=FeeCurrency(fee_currency), balances=balances)


def sweep(bot_file: Path, data: Sequence[str], space_file: Path, *, samples: int | None, seed: int, objective: str,
          workers: int | None, progress: Progress | None = None) -> SweepResult:
    space: Mapping[str, Any] = read_space(space_file)
    return run_sweep_file(bot_file, data, space, samples=samples, seed=seed, objective=objective, workers=workers,
                          progress=progress)


def download(exchange: str, pair: Pair, timeframe: str, start: datetime, end: datetime, output: Path, *,
             api_base: str | None = None, progress: Progress | None = None) -> int:
    urls = {"api_base": api_base} if api_base else None
    return asyncio.run(download_from_exchange(exchange, pair, timeframe, start, end, output, urls=urls,
                                              progress=progress))
