"""``user_guard_limits``: the pre-trade limits a user stores for all their accounts.

The guard judges every order against its user's limits (one daily total across all the
user's accounts) and, when the account has its own, the account's. Per-account limits
could be stored since revision 0003; the user's could only be set by whoever embedded the
engine, so a user with several accounts had no way to cap their day as a whole. One row
per user; settings the row leaves out take the engine's defaults.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "user_guard_limits",
        sa.Column("user_id", ID, autoincrement=False, nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_guard_limits_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_guard_limits")),
    )


def downgrade() -> None:
    op.drop_table("user_guard_limits")
