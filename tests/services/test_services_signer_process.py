"""`sealbot signer` as its own process: the engine's venue signs through its socket."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sealbot.config import load_settings
from sealbot.custody.errors import CustodyError
from sealbot.custody.secrets import ApiCredentials
from sealbot.custody.signer_socket import SocketSigner
from sealbot.engine.journal import AccountRecord
from sealbot.services import platform as platform_module
from sealbot.services.accounts import link_account, register_user
from sealbot.services.instance import init_instance
from sealbot.services.platform import open_platform
from sealbot.simex import SimexServer


def _no_kek_here(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("a socket-mode platform must not load the KEK")


async def test_a_venue_signs_through_the_signer_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Linking (seal + link-time permission check) and signing both happen in the signer
    process: the platform here never loads a keyring."""
    env_settings = {"SEALBOT_DATA_DIR": str(tmp_path / "data"), "SEALBOT_CONFIG_DIR": str(tmp_path / "config"),
                    "SEALBOT_CONFIG": str(tmp_path / "none.toml"), "SEALBOT_SIGNER": "socket"}
    (tmp_path / "none.toml").write_text("")
    settings = load_settings(data_dir=tmp_path / "data", config_dir=tmp_path / "config", signer="socket")
    init_instance(settings)
    base = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOT_") or k.startswith("SEALBOT_TEST_")}
    process = subprocess.Popen([sys.executable, "-m", "sealbot.cli", "signer"], env={**base, **env_settings},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not settings.effective_signer_socket.exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "signer socket never appeared"
            time.sleep(0.05)
        assert settings.effective_signer_socket.stat().st_mode & 0o777 == 0o660
        with SimexServer(speed=0) as sx:
            account = sx.admin.create_account("sig", {"USDT": "123.45"})
            key = sx.admin.create_key(int(account["id"]), ip_whitelist=["127.0.0.1"])
            monkeypatch.setattr(platform_module, "keyring_from_settings", _no_kek_here)
            platform = open_platform(settings, exchange_urls={"binance": {"api_base": sx.base_url}})
            assert isinstance(platform.signer, SocketSigner)
            assert platform.loaded_keyring is None
            with pytest.raises(CustodyError):
                _ = platform.keyring
            user = register_user(platform, "sig@example.org", "correct horse battery")
            creds = ApiCredentials(key["key"], key["secret"])
            view = await link_account(platform, user, "binance", "via socket", creds)
            venue = await platform.venue_for(AccountRecord(str(view.id), str(user), "binance"))
            try:
                balances = await venue.fetch_balances()
            finally:
                await venue.close()
        assert str(balances["USDT"].free) == "123.45"
        assert view.status == "active" and view.api_key_hint == key["key"][-4:]
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert key["secret"] not in (process.stdout.read() if process.stdout else "")
    if process.stderr:
        assert key["secret"] not in process.stderr.read()
