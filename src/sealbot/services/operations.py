"""Operator use cases of the CLI: verify the audit log, rotate the KEK (panic lives in
``services.revocation.run_panic``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sealbot.audit.verify import VerifyReport, verify_database
from sealbot.config import KekProvider, Settings
from sealbot.custody.kek_file import create_kek_file, load_file_kek
from sealbot.custody.rotation import RotationReport
from sealbot.custody.runtime import keyring_from_settings
from sealbot.custody.service import rotate_kek as custody_rotate_kek
from sealbot.domain.errors import InvalidConfig
from sealbot.store import make_session_factory


def verify_audit_log(settings: Settings) -> VerifyReport:
    return verify_database(settings.effective_database_url)


def rotate_file_kek(settings: Settings, progress: Callable[[int, int], None] | None = None) -> RotationReport:
    """Rewrap every data key under a new file KEK, then make it the KEK in use.

    The new key is written next to the old one as ``<kek>.next`` (0600) before any row
    changes, so an interrupted rotation resumes with the same key on the next run. Only
    when every credential is rewrapped does ``<kek>.next`` replace the KEK file; the old
    key is kept as ``<kek>.retired-<id>`` for backups taken before the rotation (destroy
    it when those expire).
    """
    if settings.kek_provider is not KekProvider.FILE:
        raise InvalidConfig("kek_provider", "rotate-kek rotates the file provider; rotate HSM keys in the token")
    current = settings.effective_kek_file
    pending = current.with_name(current.name + ".next")
    old = keyring_from_settings(settings)
    new = load_file_kek(pending) if pending.exists() else load_file_kek(create_kek_file(pending))
    report = custody_rotate_kek(make_session_factory(settings.effective_database_url), old, new, progress)
    retired = current.with_name(f"{current.name}.retired-{old.kek.kek_id.removeprefix('file:')}")
    os.replace(current, retired)
    os.replace(pending, current)
    return report


def retired_kek_files(settings: Settings) -> list[Path]:
    current = settings.effective_kek_file
    return sorted(current.parent.glob(current.name + ".retired-*"))


def keys_status(settings: Settings) -> list[str]:
    """``sealbot keys status``: the KEK in use, credentials per KEK, unfinished rotations."""
    from sealbot.custody.service import Custody
    from sealbot.store import UnitOfWork

    custody = Custody(keyring_from_settings(settings))
    with UnitOfWork(make_session_factory(settings.effective_database_url)) as uow:
        return list(custody.status(uow).lines())
