"""Building custody from settings: each provider, and the errors that name the setting."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import SecretStr

from sealbot.custody.errors import KekUnavailable
from sealbot.custody.hsm import Pkcs11Token
from sealbot.custody.kek_vault import VaultTransitKek
from sealbot.custody.runtime import keyring_from_settings

from .conftest import SOFTHSM_MODULE, TOKEN_LABEL, TOKEN_PIN


def _settings(**over: object) -> SimpleNamespace:
    base: dict[str, object] = {"kek_provider": "file", "effective_kek_file": Path("/nonexistent/kek.key"),
                               "pkcs11_module": SOFTHSM_MODULE, "pkcs11_token_label": TOKEN_LABEL,
                               "pkcs11_pin": None, "effective_database_url": "sqlite://",
                               "vault_url": "", "vault_token": None}
    return SimpleNamespace(**{**base, **over})


def test_file_provider_from_settings(kek_path: Path) -> None:
    assert keyring_from_settings(_settings(effective_kek_file=kek_path)).provider == "file"
    os.chmod(kek_path, 0o644)
    with pytest.raises(KekUnavailable, match="0644"):
        keyring_from_settings(_settings(effective_kek_file=kek_path))


def test_pkcs11_provider_from_settings(softhsm_token: Pkcs11Token) -> None:
    with pytest.raises(KekUnavailable, match="pkcs11_pin"):
        keyring_from_settings(_settings(kek_provider="pkcs11"))
    keyring = keyring_from_settings(_settings(kek_provider="pkcs11", pkcs11_pin=SecretStr(TOKEN_PIN)),
                                    create_kek=True)
    assert keyring.provider == "pkcs11" and keyring.kek.kek_id == f"pkcs11:{TOKEN_LABEL}/sealbot-kek"


def test_vault_and_unknown_providers() -> None:
    with pytest.raises(KekUnavailable, match="vault_token"):
        keyring_from_settings(_settings(kek_provider="vault"))
    keyring = keyring_from_settings(_settings(kek_provider="vault", vault_url="http://v:8200",
                                              vault_token=SecretStr("t")))
    assert isinstance(keyring.kek, VaultTransitKek)
    with pytest.raises(KekUnavailable, match="not supported"):
        keyring_from_settings(_settings(kek_provider="rot13"))


def test_make_signer_follows_the_signer_setting(kek_path: Path, tmp_path: Path) -> None:
    from sealbot.custody.runtime import make_signer
    from sealbot.custody.signer import LocalSigner
    from sealbot.custody.signer_socket import SocketSigner

    remote = make_signer(_settings(signer="socket", effective_signer_socket=tmp_path / "s.sock"))
    assert isinstance(remote, SocketSigner)  # and no KEK was needed: the path above does not exist
    local = make_signer(_settings(signer="in-process", effective_kek_file=kek_path,
                                  effective_database_url=f"sqlite:///{tmp_path / 'x.db'}"))
    assert isinstance(local, LocalSigner)
