"""Alert delivery channels: per user, a signed webhook, an e-mail address or a Telegram
chat, each with a minimum level, an on/off switch and the last delivery's outcome.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notification_channels",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=2048), nullable=False),
        sa.Column("min_level", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("webhook_secret", sa.String(length=128), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_delivery_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", TS, nullable=True),
        sa.CheckConstraint("kind IN ('webhook','email','telegram')", name=op.f("ck_notification_channels_kind")),
        sa.CheckConstraint("min_level IN ('info','warning','critical')",
                           name=op.f("ck_notification_channels_min_level")),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_notification_channels_owner_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_channels")),
    )
    op.create_index(op.f("ix_notification_channels_owner_id"), "notification_channels", ["owner_id"])


def downgrade() -> None:
    op.drop_table("notification_channels")
