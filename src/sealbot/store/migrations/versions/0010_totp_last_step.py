"""Users: ``totp_last_step``, the 30-second time step of the user's last accepted TOTP code.

RFC 6238 section 5.2: a verifier must not accept the same one-time password twice. The
web tier accepts a code only by raising this value (``UPDATE ... WHERE totp_last_step IS
NULL OR totp_last_step < :step``) in the transaction that acts on the code, so a code, or
any code of an earlier step, is refused once one was accepted, across processes and
restarts, and of two concurrent requests with one code only one can pass. Rows from before
this revision have none: their next code is accepted and sets it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_last_step")
