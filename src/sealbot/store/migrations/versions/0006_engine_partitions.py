"""Scale-out engine: account partitions with epochs (the fence), per-account partition
overrides, worker heartbeats and the applied-message ledger (de-duplication).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "engine_partitions",
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("claimed_at", TS, nullable=True),
        sa.Column("heartbeat", TS, nullable=True),
        sa.PrimaryKeyConstraint("partition", name=op.f("pk_engine_partitions")),
    )
    op.create_table(
        "engine_account_partitions",
        sa.Column("account_id", ID, autoincrement=False, nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["exchange_accounts.id"],
                                name=op.f("fk_engine_account_partitions_account_id_exchange_accounts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_engine_account_partitions")),
    )
    op.create_table(
        "engine_workers",
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("heartbeat", TS, nullable=False),
        sa.Column("partitions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("worker", name=op.f("pk_engine_workers")),
    )
    op.create_table(
        "engine_messages",
        sa.Column("id", ID, nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("committed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_engine_messages")),
        sa.UniqueConstraint("message_id", name=op.f("uq_engine_messages_message_id")),
    )
    op.create_index(op.f("ix_engine_messages_account_id"), "engine_messages", ["account_id"])


def downgrade() -> None:
    op.drop_table("engine_messages")
    op.drop_table("engine_workers")
    op.drop_table("engine_account_partitions")
    op.drop_table("engine_partitions")
