"""`sealbot demo` as the README runs it: a fresh machine (no instance of its own, no
KEK in the default place) gets a dashboard that serves the demo instance, whose login
works and whose bots are running."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_sealbot_demo_serves_the_demo_instance_on_a_machine_with_no_instance(tmp_path: Path) -> None:
    home = tmp_path / "home"  # no ~/.config/sealbot, no ~/.local/share/sealbot
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOT_")}
    scratch = tmp_path / "tmp"  # the throwaway instance goes here (TMPDIR), as on a machine's /tmp
    scratch.mkdir()
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"),
               PYTHONUNBUFFERED="1", TMPDIR=str(scratch))
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "sealbot.cli", "demo", "--port", str(port)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        login = None
        while login is None:
            assert time.monotonic() < deadline, "\n".join(lines)
            line = process.stdout.readline()
            assert line or process.poll() is None, "\n".join(lines)
            lines.append(line.rstrip())
            login = re.search(r"demo login: (\S+) / (\S+)", line)
        email, password = login.group(1), login.group(2)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline and process.poll() is None, "\n".join(lines)
                time.sleep(0.1)
            answer = client.post("/api/v1/auth/login", json={"email": email, "password": password})
            assert answer.status_code == 200, answer.text
            bots = client.get("/api/v1/bots")
            assert bots.status_code == 200, bots.text
            body = bots.json()
            items = body["items"] if isinstance(body, dict) else body
            assert {bot["status"] for bot in items} == {"running"} and len(items) == 2
        assert not (home / ".config" / "sealbot").exists()  # nothing written to the default instance
        [instance] = scratch.glob("sealbot-demo-*")
        assert any(instance.iterdir())  # the instance lives there while the demo runs
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    # the throwaway instance, its database and its key-encryption key, went with the demo
    assert list(scratch.glob("sealbot-demo-*")) == [], "\n".join(lines)
