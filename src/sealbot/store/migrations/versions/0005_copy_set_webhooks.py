"""Copy sets get the same webhook policy as single bots: a source-IP allow-list and a
per-minute rate limit, one row per set.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bot_group_webhooks",
        sa.Column("group_id", ID, autoincrement=False, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("allowed_ips", sa.JSON(), nullable=True),
        sa.Column("max_per_minute", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["bot_groups.id"], name=op.f("fk_bot_group_webhooks_group_id_bot_groups"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_bot_group_webhooks_owner_id_users")),
        sa.PrimaryKeyConstraint("group_id", name=op.f("pk_bot_group_webhooks")),
    )
    op.create_index(op.f("ix_bot_group_webhooks_owner_id"), "bot_group_webhooks", ["owner_id"])


def downgrade() -> None:
    op.drop_table("bot_group_webhooks")
