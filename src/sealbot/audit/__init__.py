"""The append-only, hash-chained audit log and its verifier.

``record(session, actor=..., action=..., subject=..., details=...)`` appends within the
caller's transaction; ``verify(session)`` recomputes the chain and names where it
breaks. Imports only ``sealbot.domain`` and ``sealbot.store``. Never put a secret in
``details`` (see ``sealbot.audit.log``).
"""

from sealbot.audit.chain import GENESIS_HASH, canonical_json, record_hash
from sealbot.audit.log import AuditLog, record
from sealbot.audit.verify import ChainBreak, VerifyReport, check_chain, verify, verify_database

__all__ = ["GENESIS_HASH", "AuditLog", "ChainBreak", "VerifyReport", "canonical_json", "check_chain", "record",
           "record_hash", "verify", "verify_database"]
