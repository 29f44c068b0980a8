"""``feed_streams`` and ``user_streams`` reach the runner of ``sealbot serve`` and
``sealbot worker``: an operator can turn candle or user-data streams off and poll."""

from __future__ import annotations

import pytest

from sealbot.config import load_settings
from sealbot.services.serving import long_lived_runner

pytestmark = pytest.mark.usefixtures("isolated_settings")


def test_candles_stream_by_default() -> None:
    runner = long_lived_runner(load_settings())
    assert runner.stream_feeds is True and runner.quiet_gc is True


def test_the_environment_turns_streams_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALBOT_FEED_STREAMS", "false")
    assert long_lived_runner(load_settings()).stream_feeds is False


def test_user_data_streams_are_on_by_default_and_the_environment_turns_them_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert long_lived_runner(load_settings()).user_stream is True
    monkeypatch.setenv("SEALBOT_USER_STREAMS", "false")
    runner = long_lived_runner(load_settings())
    assert runner.user_stream is False and runner.stream_feeds is True  # one setting, one switch
