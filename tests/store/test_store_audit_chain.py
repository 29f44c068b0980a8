"""Property: whatever single tampering an attacker does to a chain, verify reports it
at the record touched. Pure checks over in-memory records (check_chain)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from sealbot.audit import GENESIS_HASH, canonical_json, check_chain, record_hash
from sealbot.store.models import AuditRecord

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _chain(n: int) -> list[AuditRecord]:
    rows, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        at, details = T0 + timedelta(seconds=seq, microseconds=seq), {"n": seq, "note": "ü"}
        fields = {"seq": seq, "at": at, "actor": f"user:{seq % 3}", "action": "account.linked",
                  "subject": f"account:{seq}", "prev_hash": prev}
        digest = record_hash(details=details, **fields)  # type: ignore[arg-type]
        rows.append(AuditRecord(id=100 + seq, details=canonical_json(details), hash=digest, **fields))
        prev = digest
    return rows


def _head(rows: list[AuditRecord]) -> tuple[int, str]:
    return rows[-1].seq, rows[-1].hash


@dataclass(frozen=True)
class Tamper:
    kind: str
    index: int
    other: int = 0


tampers = st.integers(3, 12).flatmap(lambda n: st.tuples(st.just(n), st.one_of(
    st.builds(Tamper, st.sampled_from(["actor", "action", "subject", "details", "at", "prev_hash", "hash"]),
              st.integers(0, n - 1)),
    st.builds(Tamper, st.just("delete"), st.integers(0, n - 2)),
    st.builds(Tamper, st.just("truncate"), st.integers(1, n - 1)),
    st.integers(0, n - 2).flatmap(lambda i: st.builds(Tamper, st.just("swap"), st.just(i),
                                                      st.integers(i + 1, n - 1))),
)))


@given(n=st.integers(0, 20))
def test_an_untouched_chain_verifies(n: int) -> None:
    rows = _chain(n)
    report = check_chain(rows, _head(rows) if rows else (0, GENESIS_HASH))
    assert report.ok and report.records == n


@given(case=tampers)
def test_any_single_tampering_is_reported_at_the_record_touched(case: tuple[int, Tamper]) -> None:
    n, tamper = case
    rows = _chain(n)
    head = _head(rows)
    target = rows[tamper.index]
    expected_seq = target.seq
    if tamper.kind == "delete":
        del rows[tamper.index]
    elif tamper.kind == "truncate":
        rows = rows[: tamper.index]
        expected_seq = head[0]
    elif tamper.kind == "swap":
        a, b = rows[tamper.index], rows[tamper.other]
        a.seq, b.seq = b.seq, a.seq
        rows.sort(key=lambda r: r.seq)
    elif tamper.kind == "at":
        target.at = target.at + timedelta(microseconds=1)
    elif tamper.kind in ("prev_hash", "hash"):
        setattr(target, tamper.kind, "f" * 64)
    elif tamper.kind == "details":
        target.details = canonical_json({"n": -1})
    else:
        setattr(target, tamper.kind, getattr(target, tamper.kind) + "x")
    report = check_chain(rows, head)
    assert not report.ok
    first = report.first_break
    assert first is not None
    assert first.seq == expected_seq, report.summary()
    expected_kind = {"delete": "missing", "truncate": "truncated", "swap": "reordered"}.get(tamper.kind, "edited")
    assert first.kind == expected_kind, report.summary()
    if tamper.kind not in ("delete", "truncate"):
        assert first.record_id == rows[expected_seq - 1].id
