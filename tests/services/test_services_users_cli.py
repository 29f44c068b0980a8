"""``sealbot users add`` through the real CLI: how the operator adds users when sign-up
is closed (``registration = "closed"``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sealbot.config import load_settings
from sealbot.services import auth, users
from sealbot.services.instance import init_instance
from sealbot.services.platform import open_platform

PASSWORD = "correct horse battery staple"


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOT_") or k.startswith("SEALBOT_TEST_")}
    return subprocess.run([sys.executable, "-m", "sealbot.cli", *args], capture_output=True, text=True,
                          env={**base, **env}, timeout=120, input=stdin)


@pytest.fixture
def instance(tmp_path: Path, database_url: str) -> dict[str, str]:
    (tmp_path / "none.toml").write_text("")
    init_instance(load_settings(data_dir=tmp_path / "data", config_dir=tmp_path / "config",
                                database_url=database_url))
    return {"SEALBOT_DATA_DIR": str(tmp_path / "data"), "SEALBOT_CONFIG_DIR": str(tmp_path / "config"),
            "SEALBOT_DATABASE_URL": database_url, "SEALBOT_CONFIG": str(tmp_path / "none.toml"),
            "SEALBOT_REGISTRATION": "closed"}


def _users(env: dict[str, str]) -> list[tuple[str, bool]]:
    settings = load_settings(data_dir=Path(env["SEALBOT_DATA_DIR"]), config_dir=Path(env["SEALBOT_CONFIG_DIR"]),
                             database_url=env["SEALBOT_DATABASE_URL"])
    return [(u.email, u.is_admin) for u in users.list_users(open_platform(settings))]


def test_the_operator_adds_users_while_sign_up_is_closed(instance: dict[str, str]) -> None:
    twice = f"{PASSWORD}\n{PASSWORD}\n"
    first = cli(instance, "users", "add", "Admin@Example.org", stdin=twice)
    assert first.returncode == 0, first.stderr
    assert "user 1 added: admin@example.org (admin)" in first.stdout  # the first user is the admin
    second = cli(instance, "users", "add", "bob@example.org", stdin=twice)
    assert second.returncode == 0, second.stderr
    assert "(admin)" not in second.stdout
    third = cli(instance, "users", "add", "carol@example.org", "--admin", stdin=twice)
    assert third.returncode == 0 and "(admin)" in third.stdout, third.stderr
    for result in (first, second, third):
        assert PASSWORD not in result.stdout + result.stderr
    assert _users(instance) == [("admin@example.org", True), ("bob@example.org", False),
                                ("carol@example.org", True)]


@pytest.mark.parametrize(("args", "stdin", "error"), [
    (["dup@example.org"], f"{PASSWORD}\n{PASSWORD}\n", "error: email: is already registered"),
    (["short@example.org"], "short\nshort\n", "error: password: must be at least 10 characters"),
    (["nobody@example.org"], "", "error: password: give it twice"),
    (["not-an-email"], f"{PASSWORD}\n{PASSWORD}\n", "error: email: is not an e-mail address"),
])
def test_a_bad_user_is_refused_in_one_line_and_nothing_changes(instance: dict[str, str], args: list[str],
                                                               stdin: str, error: str) -> None:
    # the first user in process (what the command calls: the subprocess is what is under test below)
    auth.add_user(load_settings(data_dir=Path(instance["SEALBOT_DATA_DIR"]),
                                config_dir=Path(instance["SEALBOT_CONFIG_DIR"]),
                                database_url=instance["SEALBOT_DATABASE_URL"]), "dup@example.org", PASSWORD)
    result = cli(instance, "users", "add", *args, stdin=stdin)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert error in result.stderr and "Traceback" not in result.stderr
    assert _users(instance) == [("dup@example.org", True)]
