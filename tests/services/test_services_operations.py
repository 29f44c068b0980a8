"""Operator commands through the real CLI: KEK rotation, audit verification, panic."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from sealbot.config import load_settings
from sealbot.custody.errors import CustodyError
from sealbot.custody.secrets import ApiCredentials
from sealbot.services.accounts import register_user
from sealbot.services.instance import init_instance
from sealbot.services.platform import open_platform

SECRETS = [f"opsSecret{i:02d}" + "x" * 40 for i in range(3)]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOT_") or k.startswith("SEALBOT_TEST_")}
    return subprocess.run([sys.executable, "-m", "sealbot.cli", *args], capture_output=True, text=True,
                          env={**base, **env}, timeout=120)


@pytest.fixture
def instance(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {"SEALBOT_DATA_DIR": str(tmp_path / "data"), "SEALBOT_CONFIG_DIR": str(tmp_path / "config"),
           "SEALBOT_DATABASE_URL": database_url, "SEALBOT_CONFIG": str(tmp_path / "none.toml")}
    (tmp_path / "none.toml").write_text("")
    settings = load_settings(data_dir=tmp_path / "data", config_dir=tmp_path / "config", database_url=database_url)
    init_instance(settings)
    platform = open_platform(settings)
    user = register_user(platform, "ops@example.org", "correct horse battery")
    with platform.uow() as uow:
        for i, secret in enumerate(SECRETS):
            account = uow.accounts.add(user, "binance", f"acct {i}")
            creds = ApiCredentials(f"opsKey{i:02d}" + "k" * 40, secret)
            platform.custody.seal_credentials(uow, user, account.id, creds)
    return env


def _opens_all(env: dict[str, str]) -> bool:
    settings = load_settings(data_dir=Path(env["SEALBOT_DATA_DIR"]), config_dir=Path(env["SEALBOT_CONFIG_DIR"]),
                             database_url=env["SEALBOT_DATABASE_URL"])
    platform = open_platform(settings)
    with platform.uow() as uow:
        accounts = uow.accounts.list(1)
        return all(platform.custody.check_opens(uow, 1, a.id) for a in accounts)


def test_rotate_kek_rewraps_everything_and_retires_the_old_key(instance: dict[str, str]) -> None:
    kek = Path(instance["SEALBOT_CONFIG_DIR"]) / "kek.key"
    before = kek.read_bytes()
    result = cli(instance, "keys", "rotate-kek")
    assert result.returncode == 0, result.stderr
    assert kek.read_bytes() != before and kek.stat().st_mode & 0o777 == 0o600
    retired = list(kek.parent.glob("kek.key.retired-*"))
    assert len(retired) == 1 and retired[0].read_bytes() == before
    assert _opens_all(instance)
    assert "retired" in result.stdout


def test_keys_status_counts_credentials_per_kek(instance: dict[str, str]) -> None:
    result = cli(instance, "keys", "status")
    assert result.returncode == 0, result.stderr
    assert "3" in result.stdout and "file:" in result.stdout
    for secret in SECRETS:
        assert secret not in result.stdout


def test_audit_verify_passes_then_names_an_edited_record(instance: dict[str, str]) -> None:
    ok = cli(instance, "audit", "verify")
    assert ok.returncode == 0 and "intact" in ok.stdout
    engine = sa.create_engine(instance["SEALBOT_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            for trigger in conn.execute(sa.text("select name from sqlite_master where type='trigger'")).scalars().all():
                conn.execute(sa.text(f'drop trigger "{trigger}"'))
        else:
            conn.execute(sa.text("alter table audit_log disable trigger user"))
        victim = conn.execute(sa.text("select id from audit_log order by seq limit 1 offset 1")).scalar_one()
        conn.execute(sa.text("update audit_log set actor = 'someone-else' where id = :id"), {"id": victim})
    engine.dispose()
    broken = cli(instance, "audit", "verify")
    assert broken.returncode == 1
    assert f"record id {victim}" in broken.stdout and "edited" in broken.stdout


def test_panic_destroys_every_credential_and_audits_each_account(instance: dict[str, str]) -> None:
    result = cli(instance, "panic", "--yes")
    assert result.returncode == 0, result.stderr
    assert "revoked 3 account(s)" in result.stdout
    with pytest.raises(CustodyError):
        _opens_all(instance)
    engine = sa.create_engine(instance["SEALBOT_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        revoked = conn.execute(sa.text("select count(*) from audit_log where action = 'account.revoked'")).scalar()
        blobs = conn.execute(sa.text("select ciphertext from credentials")).scalars().all()
    engine.dispose()
    assert revoked == 3
    assert all(len(bytes(b)) == 0 for b in blobs)
