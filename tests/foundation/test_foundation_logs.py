"""The redaction filter masks secrets in messages, arguments and exception text."""

from __future__ import annotations

import io
import json
import logging

import pytest

from sealbot.custody.redaction import register_secret
from sealbot.logs import make_handler

SECRET = "Zq8pL2vN5tXw"  # registered: masked wherever it appears
SHAPED = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"  # Binance's doc example secret shape


@pytest.fixture
def capture() -> tuple[logging.Logger, io.StringIO]:
    register_secret(SECRET)
    stream = io.StringIO()
    logger = logging.getLogger("sealbot.test.redaction")
    logger.handlers = [make_handler(stream)]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, stream


def test_registered_secret_in_the_message(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.info(f"signing with {SECRET}")
    assert SECRET not in stream.getvalue()
    assert "***" in stream.getvalue()


def test_registered_secret_as_a_formatted_argument(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.warning("key=%s hex=%s", SECRET, SECRET.encode().hex())
    out = stream.getvalue()
    assert SECRET not in out and SECRET.encode().hex() not in out


def test_registered_secret_inside_an_exception(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    try:
        raise RuntimeError(f"exchange said: bad signature for secret {SECRET}")
    except RuntimeError:
        logger.exception("request failed")
    out = stream.getvalue()
    assert "RuntimeError" in out
    assert SECRET not in out


def test_unregistered_secret_shaped_token_is_masked(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.error("config dump: secret=%s", SHAPED)
    assert SHAPED not in stream.getvalue()


def test_ordinary_text_survives(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.info("order sb12-3-so1 BTC/USDT buy 0.00123 at 43000.01")
    assert "order sb12-3-so1 BTC/USDT buy 0.00123 at 43000.01" in stream.getvalue()


def test_json_lines_are_redacted_too() -> None:
    register_secret(SECRET)
    stream = io.StringIO()
    logger = logging.getLogger("sealbot.test.redaction.json")
    logger.handlers = [make_handler(stream, json_lines=True)]
    logger.propagate = False
    logger.warning("leak %s", SECRET, extra={"account": f"acct-{SECRET}"})
    line = json.loads(stream.getvalue())
    assert SECRET not in stream.getvalue()
    assert line["level"] == "WARNING"
