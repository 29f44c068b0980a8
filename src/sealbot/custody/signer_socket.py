"""The signer as its own process: a Unix socket server, and a client with the same interface.

Deployed this way, the web and engine processes hold no KEK and no token PIN: they
hold a socket path and opaque handles. The server checks every connecting peer's
uid with SO_PEERCRED against an allow-list before it reads a byte, so file mode
mistakes on the socket do not open it to other users.

Wire format: 4-byte big-endian length + a JSON object, one request then one reply.
Payloads travel base64-encoded. Errors come back as (kind, message) and are raised
as the same custody error types on the client; messages never carry secrets.

Besides signing, the server seals (``seal``, ``generate_ed25519``, ``attach_api_key``,
``discard_token_object``, a webhook channel's key: ``seal_channel_key``, and a user's TOTP
secret: ``seal_totp_secret``), checks two-factor codes (``match_totp``: the code's time step or
nothing, see ``custody.totp``), signs alerts
for a notification channel (``sign_notification``, narrowly: ``custody.notify_keys``) and
adopts a sealed-but-uncommitted credential for the link-time permission check
(``adopt``), so the web process never needs the KEK.
Plaintext travels only towards the signer (a pasted key, an exchange-issued API
key); replies carry sealed blobs, labels, hints, public keys and signatures.

The client keeps one connection open (ccxt calls ``sign()`` synchronously inside the
event loop, so a round trip must cost tens of microseconds, not a connect).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import socketserver
import struct
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final, cast

from sealbot.custody.envelope import Binding, SealedBlob
from sealbot.custody.errors import CredentialNotFound, CustodyError, SealedCredentialError, SigningRefused
from sealbot.custody.material import SigningAlgorithm
from sealbot.custody.notify_keys import ChannelBinding
from sealbot.custody.redaction import register_secret
from sealbot.custody.sealing import SealedCredential
from sealbot.custody.secrets import ApiCredentials, Secret
from sealbot.custody.signer import Encoding, LocalSigner, SigningHandle, SignRequest, StoredCredential

_HEADER: Final = struct.Struct(">I")
_PEERCRED: Final = struct.Struct("3i")  # pid, uid, gid
MAX_FRAME: Final = 1 << 20


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(_HEADER.pack(len(data)) + data)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("signer connection closed")
        chunks += chunk
    return bytes(chunks)


def _recv(sock: socket.socket) -> dict[str, Any]:
    (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    if size > MAX_FRAME:
        raise ConnectionError("signer frame too large")
    message = json.loads(_recv_exact(sock, size))
    if not isinstance(message, dict):
        raise ConnectionError("signer frame is not an object")
    return message


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket (Linux SO_PEERCRED)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    pid, uid, gid = _PEERCRED.unpack(raw)
    return pid, uid, gid


def _handle_to_wire(handle: SigningHandle) -> dict[str, Any]:
    return {"owner_id": handle.owner_id, "account_id": handle.account_id, "version": handle.version,
            "algorithm": handle.algorithm, "ref": handle.ref}


def _handle_from_wire(data: dict[str, Any]) -> SigningHandle:
    return SigningHandle(int(data["owner_id"]), int(data["account_id"]), int(data["version"]),
                         str(data["algorithm"]), str(data["ref"]))


def _binding_to_wire(binding: Binding) -> dict[str, int]:
    return {"owner_id": binding.owner_id, "account_id": binding.account_id, "version": binding.version}


def _binding_from_wire(data: dict[str, Any]) -> Binding:
    return Binding(int(data["owner_id"]), int(data["account_id"]), int(data["version"]))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _blob_to_wire(blob: SealedBlob) -> dict[str, Any]:
    return {"kek_id": blob.kek_id, "wrapped_key": _b64(blob.wrapped_key), "nonce": _b64(blob.nonce),
            "ciphertext": _b64(blob.ciphertext), "algorithm": blob.algorithm}


def _blob_from_wire(b: dict[str, Any]) -> SealedBlob:
    return SealedBlob(str(b["kek_id"]), base64.b64decode(b["wrapped_key"]), base64.b64decode(b["nonce"]),
                      base64.b64decode(b["ciphertext"]), str(b["algorithm"]))


def _channel_binding_to_wire(binding: ChannelBinding) -> dict[str, int]:
    return {"owner_id": binding.owner_id, "channel_id": binding.channel_id, "version": binding.version}


def _channel_binding_from_wire(data: dict[str, Any]) -> ChannelBinding:
    return ChannelBinding(int(data["owner_id"]), int(data["channel_id"]), int(data["version"]))


def _sealed_to_wire(sealed: SealedCredential) -> dict[str, Any]:
    blob = sealed.blob
    return {"binding": _binding_to_wire(sealed.binding), "algorithm": sealed.algorithm.value,
            "blob": {"kek_id": blob.kek_id, "wrapped_key": _b64(blob.wrapped_key), "nonce": _b64(blob.nonce),
                     "ciphertext": _b64(blob.ciphertext), "algorithm": blob.algorithm},
            "api_key_hint": sealed.api_key_hint, "hsm_label": sealed.hsm_label,
            "public_key_pem": sealed.public_key_pem}


def _sealed_from_wire(data: dict[str, Any]) -> SealedCredential:
    b = data["blob"]
    blob = SealedBlob(str(b["kek_id"]), base64.b64decode(b["wrapped_key"]), base64.b64decode(b["nonce"]),
                      base64.b64decode(b["ciphertext"]), str(b["algorithm"]))
    label, pem = data.get("hsm_label"), data.get("public_key_pem")
    return SealedCredential(_binding_from_wire(data["binding"]), SigningAlgorithm(data["algorithm"]), blob,
                            str(data["api_key_hint"]), None if label is None else str(label),
                            None if pem is None else str(pem))


def _stored_to_wire(credential: StoredCredential) -> dict[str, Any]:
    binding = Binding(credential.owner_id, credential.account_id, credential.version)
    return _sealed_to_wire(SealedCredential(binding, credential.algorithm, credential.blob, "",
                                            credential.hsm_label))


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    signer: LocalSigner
    allowed_uids: frozenset[int]


class _Connection(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock = cast(socket.socket, self.request)
        pid, uid, _gid = peer_credentials(sock)
        if uid not in self.server.allowed_uids:
            self.server.signer.record(
                f"uid:{uid}", "signer.peer_refused", "signer", {"pid": pid, "uid": uid})
            return
        actor = f"uid:{uid}/pid:{pid}"
        while True:
            try:
                request = _recv(sock)
            except (ConnectionError, OSError, ValueError):
                return
            try:
                reply = {"ok": True, "result": self._dispatch(request, actor)}
            except SigningRefused as exc:
                reply = {"ok": False, "kind": "refused", "rule": exc.policy_rule, "reason": exc.reason}
            except CredentialNotFound as exc:
                reply = {"ok": False, "kind": "not_found", "owner_id": exc.owner_id, "account_id": exc.account_id}
            except SealedCredentialError as exc:
                reply = {"ok": False, "kind": "sealed", "subject": exc.subject, "reason": exc.reason}
            except CustodyError as exc:
                reply = {"ok": False, "kind": "custody", "message": str(exc)}
            except (KeyError, TypeError, ValueError):
                reply = {"ok": False, "kind": "custody", "message": "custody: malformed signer request"}
            try:
                _send(sock, reply)
            except OSError:
                return

    def _dispatch(self, request: dict[str, Any], actor: str) -> Any:
        signer = self.server.signer
        op = request["op"]
        if op == "handle_for":
            handle = signer.handle_for(int(request["owner_id"]), int(request["account_id"]),
                                       str(request["purpose"]), actor=actor)
            return _handle_to_wire(handle)
        if op == "forget":
            owner, account = request.get("owner_id"), request.get("account_id")
            return signer.forget(None if owner is None else int(owner), None if account is None else int(account))
        if op in _SEALING_OPS:
            return self._seal(op, request)
        if op == "adopt":
            sealed = _sealed_from_wire(request["credential"])
            b = sealed.binding
            # an adopted handle only reads (the link-time check): with an empty allow-list
            # the policy refuses every order, whatever the caller claims the account allows
            stored = StoredCredential(b.owner_id, b.account_id, b.version, sealed.algorithm, sealed.blob,
                                      sealed.hsm_label, frozenset())
            return _handle_to_wire(signer.adopt(stored, str(request["purpose"])))
        if op == "seal_channel_key":  # a webhook's new key: in once, only the sealed blob comes back
            binding = _channel_binding_from_wire(request["binding"])
            return _blob_to_wire(signer.seal_channel_key(binding, Secret(str(request["secret"]))))
        if op == "seal_totp_secret":  # a user's new TOTP secret: in once, only the sealed blob comes back
            return _b64(signer.seal_totp_secret(int(request["owner_id"]), Secret(str(request["secret"]))))
        if op == "match_totp":  # the code's time step or None: see custody.totp.TotpKeeper
            return signer.match_totp(int(request["owner_id"]), base64.b64decode(request["sealed"]),
                                     str(request["code"]))
        if op == "sign_notification":  # narrowly: see custody.notify_keys.ChannelKeySigner
            return signer.sign_notification(int(request["owner_id"]), int(request["channel_id"]),
                                            str(request["timestamp"]), base64.b64decode(request["body"]),
                                            actor=actor)
        handle = _handle_from_wire(request["handle"])
        if op == "api_key":
            return signer.api_key(handle)
        if op == "sign_passphrase":
            return signer.sign_passphrase(handle)
        if op == "sign":
            r = request["request"]
            sign_request = SignRequest(str(r["exchange"]), str(r["method"]), str(r["path"]),
                                       {str(k): str(v) for k, v in dict(r["params"]).items()})
            encoding = request["encoding"]
            if encoding not in ("hex", "base64"):
                raise CustodyError(f"custody: unknown signature encoding {encoding!r}")
            return signer.sign(handle, base64.b64decode(request["payload"]), sign_request, encoding)
        raise CustodyError(f"custody: unknown signer operation {op!r}")

    def _seal(self, op: str, request: dict[str, Any]) -> Any:
        """Sealing for a process without the KEK. Plaintext comes in; nothing secret goes out."""
        sealer = self.server.signer.sealer()
        if op == "seal":
            c = request["credentials"]
            passphrase = c.get("passphrase")
            creds = ApiCredentials(str(c["api_key"]), str(c["secret"]),
                                   None if passphrase is None else str(passphrase))
            return _sealed_to_wire(sealer.seal_credentials(_binding_from_wire(request["binding"]), creds))
        if op == "generate_ed25519":
            return _sealed_to_wire(sealer.generate_ed25519(_binding_from_wire(request["binding"])))
        if op == "attach_api_key":
            return _sealed_to_wire(sealer.attach_api_key(_sealed_from_wire(request["sealed"]),
                                                         Secret(str(request["api_key"])),
                                                         _binding_from_wire(request["new_binding"])))
        sealer.discard_token_object(str(request["hsm_label"]))
        return None


_SEALING_OPS: Final = frozenset({"seal", "generate_ed25519", "attach_api_key", "discard_token_object"})


class SignerServer:
    """A running socket signer; ``serve_forever`` blocks, ``shutdown`` stops it."""

    def __init__(self, socket_path: Path, signer: LocalSigner, allowed_uids: Iterable[int]) -> None:
        self.socket_path = socket_path
        socket_path.parent.mkdir(parents=True, exist_ok=True)
        if socket_path.exists() or socket_path.is_symlink():
            socket_path.unlink()
        old_umask = os.umask(0o117)  # the socket is born 0660: no window with a looser mode
        try:
            self._server = _Server(str(socket_path), _Connection)
        finally:
            os.umask(old_umask)
        self._server.signer = signer
        self._server.allowed_uids = frozenset(allowed_uids)

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="sealbot-signer", daemon=True)
        thread.start()
        return thread

    def request_stop(self) -> None:
        """Make ``serve_forever`` return (blocks until it does: call it off the serving thread)."""
        self._server.shutdown()

    def close(self) -> None:
        """Close the listening socket and remove its file."""
        self._server.server_close()
        if self.socket_path.exists():
            self.socket_path.unlink()

    def shutdown(self) -> None:
        self.request_stop()
        self.close()


class SocketSigner:
    """Client of a ``sealbot signer`` process; implements the ``Signer`` protocol."""

    def __init__(self, socket_path: Path, *, timeout: float = 5.0) -> None:
        self._path, self._timeout = socket_path, timeout
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self._timeout)
        try:
            sock.connect(str(self._path))
        except OSError as exc:
            sock.close()
            raise CustodyError(f"custody: signer socket {self._path} unreachable ({exc.strerror})") from None
        return sock

    def _call(self, request: dict[str, Any]) -> Any:
        with self._lock:
            for attempt in (1, 2):  # one reconnect: the signer may have restarted
                if self._sock is None:
                    self._sock = self._connect()
                try:
                    _send(self._sock, request)
                    reply = _recv(self._sock)
                    break
                except (ConnectionError, OSError):
                    self._sock.close()
                    self._sock = None
                    if attempt == 2:
                        raise CustodyError(f"custody: signer at {self._path} closed the connection "
                                           "(is this uid allowed?)") from None
        if reply.get("ok"):
            return reply["result"]
        kind = reply.get("kind")
        if kind == "refused":
            raise SigningRefused(str(reply["rule"]), str(reply["reason"]))
        if kind == "not_found":
            raise CredentialNotFound(int(reply["owner_id"]), int(reply["account_id"]))
        if kind == "sealed":
            raise SealedCredentialError(str(reply["subject"]), str(reply["reason"]))
        raise CustodyError(str(reply.get("message", "custody: signer error")))

    def handle_for(self, owner_id: int, account_id: int, purpose: str) -> SigningHandle:
        result = self._call({"op": "handle_for", "owner_id": owner_id, "account_id": account_id,
                             "purpose": purpose})
        return _handle_from_wire(result)

    def api_key(self, handle: SigningHandle) -> str:
        """The account's API key, which this process puts in the request header: registered
        with the log redactor here, as the signer process registers it there (KuCoin's 24
        and Bybit's 18 characters are too short for the secret-shaped mask, so a debug log of
        the request headers would otherwise show it)."""
        api_key = str(self._call({"op": "api_key", "handle": _handle_to_wire(handle)}))
        register_secret(api_key)
        return api_key

    def sign(self, handle: SigningHandle, payload: bytes, request: SignRequest, encoding: Encoding) -> str:
        return str(self._call({
            "op": "sign", "handle": _handle_to_wire(handle), "payload": base64.b64encode(payload).decode(),
            "encoding": encoding,
            "request": {"exchange": request.exchange, "method": request.method, "path": request.path,
                        "params": {str(k): str(v) for k, v in request.params.items()}},
        }))

    def sign_passphrase(self, handle: SigningHandle) -> str:
        return str(self._call({"op": "sign_passphrase", "handle": _handle_to_wire(handle)}))

    def forget(self, owner_id: int | None = None, account_id: int | None = None) -> int:
        return int(self._call({"op": "forget", "owner_id": owner_id, "account_id": account_id}))

    # ----- custody.sealing.Sealer: sealing happens in the signer process -------------------
    def seal_credentials(self, binding: Binding, creds: ApiCredentials) -> SealedCredential:
        passphrase = None if creds.passphrase is None else creds.passphrase.reveal()
        return _sealed_from_wire(self._call({
            "op": "seal", "binding": _binding_to_wire(binding),
            "credentials": {"api_key": creds.api_key.reveal(), "secret": creds.secret.reveal(),
                            "passphrase": passphrase}}))

    def generate_ed25519(self, binding: Binding) -> SealedCredential:
        return _sealed_from_wire(self._call({"op": "generate_ed25519", "binding": _binding_to_wire(binding)}))

    def attach_api_key(self, sealed: SealedCredential, api_key: Secret, new_binding: Binding) -> SealedCredential:
        return _sealed_from_wire(self._call({"op": "attach_api_key", "sealed": _sealed_to_wire(sealed),
                                             "api_key": api_key.reveal(),
                                             "new_binding": _binding_to_wire(new_binding)}))

    def discard_token_object(self, hsm_label: str) -> None:
        self._call({"op": "discard_token_object", "hsm_label": hsm_label})

    # ----- custody.notify_keys.NotificationSigner: webhook keys live in the signer process -----
    def seal_channel_key(self, binding: ChannelBinding, secret: Secret) -> SealedBlob:
        return _blob_from_wire(self._call({"op": "seal_channel_key", "binding": _channel_binding_to_wire(binding),
                                           "secret": secret.reveal()}))

    # ----- custody.totp.TotpSigner: two-factor secrets are sealed and checked in the signer process -----
    def seal_totp_secret(self, owner_id: int, secret: Secret) -> bytes:
        return base64.b64decode(self._call({"op": "seal_totp_secret", "owner_id": owner_id,
                                            "secret": secret.reveal()}))

    def match_totp(self, owner_id: int, sealed: bytes, code: str) -> int | None:
        result = self._call({"op": "match_totp", "owner_id": owner_id, "sealed": _b64(sealed), "code": code})
        if result is not None and (isinstance(result, bool) or not isinstance(result, int)):
            raise CustodyError("custody: the signer's answer to match_totp is not a time step")
        return result

    def sign_notification(self, owner_id: int, channel_id: int, timestamp: str, body: bytes) -> str:
        return str(self._call({"op": "sign_notification", "owner_id": owner_id, "channel_id": channel_id,
                               "timestamp": timestamp, "body": base64.b64encode(body).decode()}))

    def adopt(self, credential: StoredCredential, purpose: str) -> SigningHandle:
        """A read-only handle for a sealed, not yet committed credential (see ``LocalSigner.adopt``);
        the blob travels in the request and the signer opens it with its KEK."""
        return _handle_from_wire(self._call({"op": "adopt", "credential": _stored_to_wire(credential),
                                             "purpose": purpose}))

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def __repr__(self) -> str:
        return f"SocketSigner({self._path})"
