"""``sealbot signer``: the signer process (see custody.runtime and docs/custody.md)."""

from __future__ import annotations

from collections.abc import Iterable

from sealbot.config import Settings
from sealbot.custody.runtime import run_signer_server


def run_signer(settings: Settings, allowed_uids: Iterable[int] | None = None) -> None:
    """Serve signatures on the configured socket until SIGTERM; only ``allowed_uids``
    (default: this process's own uid, checked with SO_PEERCRED) are served."""
    run_signer_server(settings.effective_signer_socket, settings, allowed_uids=allowed_uids)
