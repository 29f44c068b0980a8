"""Local receivers for alert delivery tests: an HTTP webhook endpoint and an SMTP sink."""

from __future__ import annotations

import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    """Collects (headers, body) of every POST on a free local port."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.received.append(({k: v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpSink:
    """Just enough SMTP (no TLS) for smtplib to log in (AUTH PLAIN, any credentials, kept
    in ``logins``) and hand over one message per session."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.logins: list[str] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(f"{line}\r\n".encode())

            def handle(self) -> None:
                self.reply("220 sink ready")
                while True:
                    line = self.rfile.readline().decode().strip()
                    verb = line.split(" ", 1)[0].upper()
                    if not line or verb == "QUIT":
                        self.reply("221 bye")
                        return
                    if verb in ("EHLO", "HELO"):
                        self.reply("250-sink")
                        self.reply("250 AUTH PLAIN")
                    elif verb == "AUTH":
                        outer.logins.append(line.split(" ", 2)[-1])
                        self.reply("235 authenticated")
                    elif verb == "DATA":
                        self.reply("354 go ahead")
                        data = []
                        while (row := self.rfile.readline().decode()) not in (".\r\n", ".\n", ""):
                            data.append(row)
                        outer.messages.append("".join(data))
                        self.reply("250 queued")
                    else:
                        self.reply("250 ok")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> SmtpSink:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
