"""Configuration: environment over TOML over defaults; every mistake names the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealbot.config import load_settings, masked_view
from sealbot.domain.errors import InvalidConfig

pytestmark = pytest.mark.usefixtures("isolated_settings")


def test_embedded_defaults_keep_the_kek_out_of_the_data_directory() -> None:
    settings = load_settings()
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.data_dir != settings.config_dir
    assert settings.effective_kek_file.parent == settings.config_dir
    assert not settings.effective_kek_file.is_relative_to(settings.data_dir)


def test_environment_overrides_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "sealbot.toml"
    toml.write_text('port = 9001\nlog_level = "debug"\n')
    monkeypatch.setenv("SEALBOT_CONFIG", str(toml))
    monkeypatch.setenv("SEALBOT_PORT", "9002")
    settings = load_settings()
    assert settings.port == 9002
    assert settings.log_level == "DEBUG"


def test_unknown_environment_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALBOT_DATABSE_URL", "sqlite:///x.db")
    with pytest.raises(InvalidConfig) as info:
        load_settings()
    assert info.value.field == "SEALBOT_DATABSE_URL"
    assert "unknown setting" in str(info.value)


def test_unknown_toml_key_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "sealbot.toml"
    toml.write_text('prot = 8000\n')
    monkeypatch.setenv("SEALBOT_CONFIG", str(toml))
    with pytest.raises(InvalidConfig) as info:
        load_settings()
    assert info.value.field == "prot"


def test_wrong_type_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALBOT_PORT", "eighty")
    with pytest.raises(InvalidConfig) as info:
        load_settings()
    assert info.value.field == "port"
    assert "integer" in info.value.reason


def test_bad_enum_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALBOT_KEK_PROVIDER", "plaintext")
    with pytest.raises(InvalidConfig) as info:
        load_settings()
    assert info.value.field == "kek_provider"


def test_kek_path_that_is_a_directory_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEALBOT_KEK_FILE", str(tmp_path))
    with pytest.raises(InvalidConfig) as info:
        load_settings()
    assert info.value.field == "kek_file"
    assert "not a regular file" in info.value.reason


def test_broken_toml_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "sealbot.toml"
    toml.write_text("port = = 1\n")
    monkeypatch.setenv("SEALBOT_CONFIG", str(toml))
    with pytest.raises(InvalidConfig) as info:
        load_settings()
    assert info.value.field == "SEALBOT_CONFIG"
    assert "not valid TOML" in info.value.reason


def test_config_show_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALBOT_PKCS11_PIN", "1234-secret-pin")
    monkeypatch.setenv("SEALBOT_DATABASE_URL", "postgresql://sealbot:hunter2pass@db:5432/sealbot")
    monkeypatch.setenv("SEALBOT_BROKER_URL", "amqp://guest:brokerpass@mq:5672/")
    view = masked_view(load_settings())
    text = repr(view)
    for secret in ("1234-secret-pin", "hunter2pass", "brokerpass"):
        assert secret not in text
    assert view["database_url"] == "postgresql://sealbot:***@db:5432/sealbot"
    assert view["pkcs11_pin"] == "***"
