"""Instance configuration: ``SEALBOT_*`` environment variables over an optional TOML file.

The defaults are the embedded deployment: a SQLite database under the user's data
directory and the key-encryption key in a file under a *separate* config directory,
so a copy of the data directory (or of the database alone) holds nothing usable.

Any mistake names the setting: an unknown key (in the TOML file or as a ``SEALBOT_``
variable), a wrong type, a KEK path that cannot be a readable file.
"""

from __future__ import annotations

import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import ByteSize, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from sealbot.domain.errors import InvalidConfig

ENV_PREFIX = "SEALBOT_"
CONFIG_FILE_ENV = "SEALBOT_CONFIG"
# Variables with our prefix that are not settings of the instance itself: the config
# file's path, and the test suite's switches (SEALBOT_TEST_*).
_NOT_SETTINGS = frozenset({CONFIG_FILE_ENV})
_TEST_PREFIX = "SEALBOT_TEST_"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("sealbot", appauthor=False))


def default_config_dir() -> Path:
    return Path(platformdirs.user_config_dir("sealbot", appauthor=False))


class KekProvider(StrEnum):
    FILE = "file"
    PKCS11 = "pkcs11"
    VAULT = "vault"


class SignerMode(StrEnum):
    IN_PROCESS = "in-process"
    SOCKET = "socket"


class PermissionPolicy(StrEnum):
    WARN = "warn"  # a key without an IP restriction is linked and flagged
    STRICT = "strict"  # such a key is refused


class Registration(StrEnum):
    OPEN = "open"  # anyone who reaches the instance may sign up
    CLOSED = "closed"  # only the first user of an empty instance (who becomes its admin)


class EngineBackend(StrEnum):
    IN_PROCESS = "in-process"
    RABBITMQ = "rabbitmq"


class Settings(BaseSettings):
    """Every setting of a sealbot instance. See docs/configuration.md for each one."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    data_dir: Path = Field(default_factory=default_data_dir)
    config_dir: Path = Field(default_factory=default_config_dir)
    database_url: str = ""
    kek_provider: KekProvider = KekProvider.FILE
    kek_file: Path | None = None
    pkcs11_module: Path = Path("/usr/lib/softhsm/libsofthsm2.so")
    pkcs11_token_label: str = "sealbot"
    pkcs11_pin: SecretStr | None = None
    vault_url: str = ""
    vault_token: SecretStr | None = None
    signer: SignerMode = SignerMode.IN_PROCESS
    signer_socket: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str = ""
    log_level: str = "INFO"
    log_json: bool = False
    permission_policy: PermissionPolicy = PermissionPolicy.WARN
    # self-service sign-up (API and dashboard); "closed" once the instance's users exist (docs/security.md)
    registration: Registration = Registration.OPEN
    engine: EngineBackend = EngineBackend.IN_PROCESS
    broker_url: SecretStr | None = None
    # RabbitMQ's management API (http://user:password@host:15672): workers evict a hung
    # peer through it (docs/deploy.md); unset: they wait for the broker's heartbeat timeout
    broker_admin_url: SecretStr | None = None
    engine_partitions: int = Field(default=128, ge=1, le=4096)  # P: the same on every worker and gateway
    broker_prefix: str = Field(default="sealbot", pattern=r"^[A-Za-z0-9_.-]+$")  # exchange/queue name prefix
    # candles over the exchange's websocket where ccxt.pro offers it, else REST polling (docs/engine.md)
    feed_streams: bool = True
    # fills polled the moment the exchange's user-data stream reports an order event (docs/engine.md)
    user_streams: bool = True
    # Alert delivery (docs/notifications.md): the instance's SMTP relay and Telegram bot;
    # each user picks their own channels (webhook URL, e-mail address, Telegram chat).
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: SecretStr | None = None
    smtp_from: str = ""
    smtp_starttls: bool = True
    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    notify_timeout: float = Field(default=5.0, gt=0, le=120)
    notify_allow_loopback: bool = False
    notify_allow_private: bool = True
    # Dashboard/API backtests kept per user (docs/backtesting.md): past either limit the
    # oldest runs are removed; a single run larger than the byte limit is refused.
    backtest_max_runs: int = Field(default=50, ge=1, le=100_000)
    backtest_max_bytes: ByteSize = Field(default=ByteSize(100_000_000), ge=1)  # "100MB", "1GiB" or bytes

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("kek_file")
    @classmethod
    def _kek_file_usable(cls, value: Path | None) -> Path | None:
        if value is not None and value.exists():
            if not value.is_file():
                raise ValueError(f"{value} is not a regular file")
            try:
                with value.open("rb"):
                    pass
            except OSError as exc:
                raise ValueError(f"{value} cannot be read ({exc.strerror})") from None
        return value

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'sealbot.db'}"

    @property
    def effective_kek_file(self) -> Path:
        return self.kek_file or self.config_dir / "kek.key"

    @property
    def effective_signer_socket(self) -> Path:
        return self.signer_socket or self.data_dir / "signer.sock"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = _config_file()
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)


def _config_file() -> Path | None:
    explicit = os.environ.get(CONFIG_FILE_ENV)
    if explicit:
        return Path(explicit)
    default = default_config_dir() / "sealbot.toml"
    return default if default.exists() else None


def load_settings(**overrides: Any) -> Settings:
    """Load the effective settings, or raise ``InvalidConfig`` naming the first bad setting."""
    _reject_unknown_env()
    _check_config_file()
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "config"
        reason = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            reason = "unknown setting"
        raise InvalidConfig(field, reason) from None


def _reject_unknown_env() -> None:
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    for name in sorted(os.environ):
        if name.startswith(ENV_PREFIX) and name not in known | _NOT_SETTINGS and not name.startswith(_TEST_PREFIX):
            raise InvalidConfig(name, "unknown setting")


def _check_config_file() -> None:
    path = _config_file()
    if path is None:
        return
    try:
        with path.open("rb") as handle:
            tomllib.load(handle)
    except FileNotFoundError:
        raise InvalidConfig(CONFIG_FILE_ENV, f"{path} does not exist") from None
    except OSError as exc:
        raise InvalidConfig(CONFIG_FILE_ENV, f"{path} cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidConfig(CONFIG_FILE_ENV, f"{path} is not valid TOML ({exc})") from None


def masked_view(settings: Settings) -> dict[str, str]:
    """The effective settings as text, secrets masked, for ``sealbot config show``."""
    view: dict[str, str] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            view[name] = "***" if value.get_secret_value() else ""
        elif name in {"database_url", "broker_url"} and value:
            view[name] = _mask_url_password(str(value))
        else:
            view[name] = "" if value is None else str(value)
    view["database_url"] = _mask_url_password(settings.effective_database_url)
    view["kek_file"] = str(settings.effective_kek_file)
    view["signer_socket"] = str(settings.effective_signer_socket)
    return view


def _mask_url_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user, colon, _password = credentials.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"
