"""The CLI: --help everywhere, --version, one clear line and exit 2 for bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import sealbot


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOT_") or k.startswith("SEALBOT_TEST_")}
    return subprocess.run(
        [sys.executable, "-m", "sealbot.cli", *args],
        capture_output=True, text=True, env={**base, **(env or {})}, timeout=60,
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"sealbot {sealbot.__version__}"


@pytest.mark.parametrize("command", [[], ["init"], ["serve"], ["demo"], ["config", "show"], ["db", "upgrade"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_bad_configuration_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("")
    result = run("config", "show", env={"SEALBOT_PORT": "eighty", "SEALBOT_CONFIG": str(tmp_path / "empty.toml")})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "port" in result.stderr and "Traceback" not in result.stderr


def test_unknown_command_is_one_line_and_exit_2() -> None:
    result = run("frobnicate")
    assert result.returncode == 2
    assert "No such command 'frobnicate'" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_show_prints_the_effective_settings(tmp_path: Path) -> None:
    toml = tmp_path / "sealbot.toml"
    toml.write_text("port = 8123\n")
    result = run("config", "show", env={"SEALBOT_CONFIG": str(toml), "SEALBOT_PKCS11_PIN": "pin-4711-x"})
    assert result.returncode == 0, result.stderr
    assert "8123" in result.stdout
    assert "pin-4711-x" not in result.stdout
