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


def test_init_creates_a_private_kek_apart_from_the_database_and_is_repeatable(tmp_path: Path) -> None:
    env = {
        "SEALBOT_DATA_DIR": str(tmp_path / "data"),
        "SEALBOT_CONFIG_DIR": str(tmp_path / "config"),
        "SEALBOT_CONFIG": str(tmp_path / "none.toml"),
    }
    (tmp_path / "none.toml").write_text("")
    first = run("init", env=env)
    assert first.returncode == 0, first.stderr
    kek = tmp_path / "config" / "kek.key"
    assert kek.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data" / "sealbot.db").exists()
    assert not any(p.name == "kek.key" for p in (tmp_path / "data").rglob("*"))
    key_before = kek.read_bytes()

    again = run("init", env=env)
    assert again.returncode == 0, again.stderr
    assert "kept existing key-encryption key" in again.stdout
    assert kek.read_bytes() == key_before  # never overwritten


def test_init_refuses_a_kek_readable_by_others(tmp_path: Path) -> None:
    env = {
        "SEALBOT_DATA_DIR": str(tmp_path / "data"),
        "SEALBOT_CONFIG_DIR": str(tmp_path / "config"),
        "SEALBOT_CONFIG": str(tmp_path / "none.toml"),
    }
    (tmp_path / "none.toml").write_text("")
    assert run("init", env=env).returncode == 0
    (tmp_path / "config" / "kek.key").chmod(0o644)
    result = run("init", env=env)
    assert result.returncode == 2
    assert "kek.key" in result.stderr and "chmod 600" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_upgrade_migrates_the_configured_database(tmp_path: Path) -> None:
    (tmp_path / "none.toml").write_text("")
    env = {"SEALBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "SEALBOT_CONFIG": str(tmp_path / "none.toml")}
    result = run("db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    import sqlalchemy as sa

    tables = sa.inspect(sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")).get_table_names()
    assert {"users", "exchange_accounts", "credentials", "orders", "fills", "audit_log"} <= set(tables)
