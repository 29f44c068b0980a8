"""The file KEK: created 0600, refused when looser, unreadable or malformed, naming the path."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sealbot.custody.errors import KekUnavailable, SealedCredentialError
from sealbot.custody.kek_file import create_kek_file, load_file_kek


def test_created_file_is_0600_and_loads(tmp_path: Path) -> None:
    path = create_kek_file(tmp_path / "cfg" / "kek.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kek = load_file_kek(path)
    assert kek.kek_id.startswith("file:")
    assert load_file_kek(path).kek_id == kek.kek_id
    wrapped = kek.wrap(b"k" * 32, b"aad")
    assert kek.unwrap(wrapped, b"aad") == b"k" * 32
    with pytest.raises(SealedCredentialError):
        kek.unwrap(wrapped, b"other aad")


def test_a_second_init_does_not_overwrite_the_kek(tmp_path: Path) -> None:
    path = create_kek_file(tmp_path / "kek.key")
    before = path.read_bytes()
    with pytest.raises(KekUnavailable, match="already exists"):
        create_kek_file(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_looser_mode_is_refused_naming_path_and_mode(tmp_path: Path, mode: int) -> None:
    path = create_kek_file(tmp_path / "kek.key")
    os.chmod(path, mode)
    with pytest.raises(KekUnavailable) as caught:
        load_file_kek(path)
    assert str(path) in str(caught.value) and f"{mode:04o}" in str(caught.value)


def test_missing_unreadable_and_malformed_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KekUnavailable, match="does not exist"):
        load_file_kek(tmp_path / "nope.key")
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    os.chmod(bad, 0o600)
    with pytest.raises(KekUnavailable, match="not a sealbot KEK file"):
        load_file_kek(bad)
    short = tmp_path / "short.key"
    short.write_text("sealbot-kek-v1:AAAA\n")
    os.chmod(short, 0o600)
    with pytest.raises(KekUnavailable, match="24-bit key"):
        load_file_kek(short)
    if os.geteuid() != 0:  # root reads any file regardless of mode
        unreadable = create_kek_file(tmp_path / "unreadable.key")
        os.chmod(unreadable, 0o000)
        with pytest.raises(KekUnavailable, match="cannot be read"):
            load_file_kek(unreadable)
