"""``feed_streams`` (SEALBOT_FEED_STREAMS) reaches the runner of ``sealbot serve`` and
``sealbot worker``: an operator can turn candle streams off and poll every pair."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sealbot.config import load_settings
from sealbot.services.serving import long_lived_runner


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("SEALBOT_") and not name.startswith("SEALBOT_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SEALBOT_CONFIG", str(tmp_path / "absent.toml"))
    (tmp_path / "absent.toml").write_text("")


def test_candles_stream_by_default() -> None:
    runner = long_lived_runner(load_settings())
    assert runner.stream_feeds is True and runner.quiet_gc is True


def test_the_environment_turns_streams_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALBOT_FEED_STREAMS", "false")
    assert long_lived_runner(load_settings()).stream_feeds is False
