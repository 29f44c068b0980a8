"""Checking the audit chain: which record breaks it, and how.

``verify`` walks the records by ``seq`` and recomputes every hash. Kinds of break:

- ``edited``: a record's fields no longer give its stored hash;
- ``missing``: a gap in ``seq`` (a record deleted from the middle);
- ``broken_link``: ``prev_hash`` is not the previous record's hash (a record deleted
  and the rest renumbered, or a forged record inserted);
- ``reordered``: records moved — a record's hash is valid for another position in
  the chain, or the row ids run against the seq order;
- ``truncated``: the chain head (``audit_head``) names a later record than the last
  one present (records cut off the end), or disagrees with the last record's hash.

Each break names the record's ``seq`` and row ``id``. The report lists every break
found; the first is where the chain stopped being trustworthy.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.orm import Session

from sealbot.audit.chain import GENESIS_HASH, record_hash
from sealbot.store.models import AuditRecord
from sealbot.store.repositories.audit import AuditRepository

BreakKind = Literal["edited", "missing", "broken_link", "reordered", "truncated"]


@dataclass(frozen=True, slots=True)
class ChainBreak:
    kind: BreakKind
    seq: int
    record_id: int | None
    detail: str

    def __str__(self) -> str:
        where = f"record id {self.record_id} (seq {self.seq})" if self.record_id is not None else f"seq {self.seq}"
        return f"{self.kind} at {where}: {self.detail}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    records: int
    last_seq: int
    last_hash: str
    breaks: tuple[ChainBreak, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first_break(self) -> ChainBreak | None:
        return self.breaks[0] if self.breaks else None

    def summary(self) -> str:
        if self.ok:
            return f"audit log intact: {self.records} records, head seq {self.last_seq}, hash {self.last_hash[:16]}…"
        lines = [f"audit log BROKEN: {len(self.breaks)} problem(s) in {self.records} records"]
        lines += [f"  {b}" for b in self.breaks]
        return "\n".join(lines)


def _recompute(row: AuditRecord, *, seq: int | None = None, prev_hash: str | None = None) -> str | None:
    try:
        details = json.loads(row.details)
    except ValueError:
        return None
    return record_hash(seq=row.seq if seq is None else seq, at=row.at, actor=row.actor, action=row.action,
                       subject=row.subject, details=details,
                       prev_hash=row.prev_hash if prev_hash is None else prev_hash)


def verify(session: Session) -> VerifyReport:
    """Recompute the whole chain and report where (and how) it breaks."""
    repo = AuditRepository(session)
    rows = list(repo.in_order())
    head = repo.head()
    return check_chain(rows, (head.seq, head.hash) if head is not None else None)


def check_chain(rows: Sequence[AuditRecord], head: tuple[int, str] | None) -> VerifyReport:
    """The verification itself, over records in ascending ``seq`` order and the stored
    head ``(seq, hash)`` (None when there is no head row). Pure: no database access."""
    breaks: list[ChainBreak] = []
    seq_of_hash = {row.hash: row.seq for row in rows}
    position = _chain_positions(rows)
    expected_seq, prev_hash, prev_id = 1, GENESIS_HASH, 0
    for row in rows:
        if row.seq > expected_seq:
            breaks.append(ChainBreak("missing", expected_seq, None,
                                     f"seq {expected_seq}..{row.seq - 1} missing before record id {row.id}"))
        actual = _recompute(row)
        if actual != row.hash:
            breaks.append(_classify_bad_hash(row, position.get(row.id)))
        elif row.prev_hash != prev_hash:
            if row.prev_hash in seq_of_hash:
                breaks.append(ChainBreak("reordered", row.seq, row.id,
                                         f"links to seq {seq_of_hash[row.prev_hash]}, not to the record before it"))
            else:
                breaks.append(ChainBreak("broken_link", row.seq, row.id,
                                         "prev_hash matches no record: a record before it was removed or forged"))
        if row.id < prev_id:
            breaks.append(ChainBreak("reordered", row.seq, row.id,
                                     f"row id {row.id} comes after id {prev_id} in seq order"))
        expected_seq, prev_hash, prev_id = row.seq + 1, row.hash, max(prev_id, row.id)
    last_seq = rows[-1].seq if rows else 0
    last_hash = rows[-1].hash if rows else GENESIS_HASH
    if head is not None and head != (last_seq, last_hash):
        head_seq = head[0]
        if head_seq > last_seq:
            detail = f"the head names seq {head_seq} but the last record is seq {last_seq}"
        else:
            detail = f"the head (seq {head_seq}) does not match the last record (seq {last_seq})"
        breaks.append(ChainBreak("truncated", head_seq, None, detail))
    return VerifyReport(records=len(rows), last_seq=last_seq, last_hash=last_hash, breaks=tuple(breaks))


def _chain_positions(rows: Sequence[AuditRecord]) -> dict[int, int]:
    """Where each record sits by following ``prev_hash`` links from the genesis: its
    original seq, whatever its ``seq`` column says now. Unreachable records are left out."""
    by_prev: dict[str, AuditRecord] = {}
    for row in rows:
        by_prev.setdefault(row.prev_hash, row)
    positions: dict[int, int] = {}
    link, pos = GENESIS_HASH, 1
    while (nxt := by_prev.get(link)) is not None and nxt.id not in positions:
        positions[nxt.id] = pos
        link, pos = nxt.hash, pos + 1
    return positions


def _classify_bad_hash(row: AuditRecord, original_seq: int | None) -> ChainBreak:
    """An invalid hash is an edit, unless the record is intact for another position."""
    if original_seq is not None and original_seq != row.seq and _recompute(row, seq=original_seq) == row.hash:
        return ChainBreak("reordered", row.seq, row.id,
                          f"the record belongs at seq {original_seq} (its content and hash are intact)")
    return ChainBreak("edited", row.seq, row.id, "its fields no longer match its hash")


def verify_database(url: str) -> VerifyReport:
    """Open the database at ``url`` and verify its chain (what ``sealbot audit verify`` runs)."""
    from sealbot.store.db import make_engine, make_session_factory

    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            return verify(session)
    finally:
        engine.dispose()
