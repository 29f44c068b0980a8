"""Errors custody raises on purpose. None carries a secret: only ids, paths and reasons.

A sealed credential that does not open (wrong KEK, a blob copied onto another
account's row, tampered bytes) is one error, ``SealedCredentialError``, because
AES-GCM cannot tell those apart and an attacker should not learn which it was.
"""

from __future__ import annotations

from sealbot.domain.errors import Refused, SealbotError


class CustodyError(SealbotError):
    """Base of custody's errors; the message names the thing and the reason."""


class KekUnavailable(CustodyError):
    """The key-encryption key cannot be used: missing, unreadable, too permissive, wrong size."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"custody: key-encryption key {where}: {reason}")
        self.where, self.reason = where, reason


class SealedCredentialError(CustodyError):
    """A sealed blob did not open: wrong KEK, wrong (owner, account, version) binding, or tampering."""

    def __init__(self, subject: str, reason: str = "does not open with this KEK and binding") -> None:
        super().__init__(f"custody: sealed credential {subject} {reason}")
        self.subject, self.reason = subject, reason


class CredentialNotFound(CustodyError):
    """No live (not destroyed) credential for this owner and account."""

    def __init__(self, owner_id: int, account_id: int) -> None:
        super().__init__(f"custody: no credential for owner {owner_id} account {account_id}")
        self.owner_id, self.account_id = owner_id, account_id


class SigningRefused(Refused):
    """The signer's policy refused a request (withdrawal, transfer, pair outside the allow-list)."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"signing policy ({rule})", reason)
        self.policy_rule = rule
