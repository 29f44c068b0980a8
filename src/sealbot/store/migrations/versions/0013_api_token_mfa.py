"""API tokens: ``mfa_verified``, whether the session that made the token had passed 2FA.

Before this revision a token counted as 2FA-verified whenever its user had 2FA on, so a
token made before 2FA was turned on, or by a session opened with the password alone,
could link and revoke exchange keys as if the second factor had been given. Tokens from
before this revision cannot show how they were made, so they are not verified: they keep
their scopes, but linking or revoking a key needs a token made anew from a session that
passed 2FA.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("mfa_verified", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("mfa_verified")
