"""KEK rotation: rewrap every data key under a new KEK, resumably, never decrypting a secret.

Rows are processed in id order, in batches; each batch's new wrapped keys and the
rotation's cursor (the last id done) are committed in one transaction, so a kill at
any point loses at most the batch in flight, and a rerun continues after the cursor.
Rows are also selected by their KEK id, so a rerun can never rewrap a row twice
(rewrapping needs the old KEK, and a done row names the new one).

Before it writes anything, each rewrapped key is unwrapped again with the new KEK
(``envelope.rewrap``); a broken new KEK fails the first batch and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sealbot.custody.envelope import Binding, Kek, SealedBlob, rewrap
from sealbot.custody.errors import CustodyError


@dataclass(frozen=True, slots=True)
class RotationRow:
    row_id: int
    binding: Binding
    blob: SealedBlob


@dataclass(frozen=True, slots=True)
class RotationReport:
    old_kek_id: str
    new_kek_id: str
    rewrapped: int  # by this run
    total: int  # rows under either KEK when this run started
    resumed_from: int  # cursor this run started after (0 = fresh)
    channel_keys: int = 0  # sealed notification webhook keys rewrapped by this run
    totp_secrets: int = 0  # sealed two-factor (TOTP) secrets rewrapped by this run, pending setups included


class RotationStore(Protocol):
    """What rotation needs from storage; ``custody.store_adapters`` implements it."""

    def start(self, old_kek_id: str, new_kek_id: str) -> tuple[int, int]:
        """(rotation id, cursor): an unfinished rotation between the same KEKs resumes."""
        ...

    def counts(self) -> dict[str, int]:
        """Live credentials per KEK id."""
        ...

    def batch(self, kek_id: str, after_id: int, limit: int) -> list[RotationRow]:
        """Live credentials under ``kek_id`` with id > ``after_id``, by id."""
        ...

    def save(self, rotation_id: int, updates: Sequence[tuple[int, SealedBlob]], cursor: int) -> None:
        """Write the new wrappings and move the cursor, atomically."""
        ...

    def finish(self, rotation_id: int) -> None: ...


def rotate(store: RotationStore, old: Kek, new: Kek, progress: Callable[[int, int], None] | None = None,
           *, batch_size: int = 500) -> RotationReport:
    """Rewrap every live credential from ``old`` to ``new``; ``progress(done, total)`` after each batch."""
    counts = store.counts()
    on_old, on_new = counts.get(old.kek_id, 0), counts.get(new.kek_id, 0)
    if on_old == 0 and on_new == 0 and counts:
        raise CustodyError(f"custody: no credential is wrapped by KEK {old.kek_id} (the database uses "
                           f"{', '.join(sorted(counts))}); is this the right old KEK?")
    rotation_id, cursor = store.start(old.kek_id, new.kek_id)
    resumed_from = cursor
    total, done = on_old + on_new, on_new
    if progress is not None:
        progress(done, total)
    rewrapped = 0
    while True:
        rows = store.batch(old.kek_id, cursor, batch_size)
        if not rows:
            break
        updates = [(row.row_id, rewrap(row.blob, row.binding, old, new)) for row in rows]
        cursor = rows[-1].row_id
        store.save(rotation_id, updates, cursor)
        rewrapped += len(updates)
        done += len(updates)
        if progress is not None:
            progress(done, total)
    store.finish(rotation_id)
    return RotationReport(old.kek_id, new.kek_id, rewrapped, total, resumed_from)
