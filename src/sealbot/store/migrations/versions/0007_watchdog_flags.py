"""Watchdog flags: what the watchdog reported per account (order and trade ids), so a
restarted engine or a worker that took the partition over does not report it again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "watchdog_flags",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("ref", sa.String(200), nullable=False),
        sa.Column("alert_id", ID, nullable=True),
        sa.Column("flagged_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_watchdog_flags_owner_id_users")),
        sa.ForeignKeyConstraint(["account_id"], ["exchange_accounts.id"],
                                name=op.f("fk_watchdog_flags_account_id_exchange_accounts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name=op.f("fk_watchdog_flags_alert_id_alerts"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watchdog_flags")),
        sa.UniqueConstraint("account_id", "ref", name=op.f("uq_watchdog_flags_account_id_ref")),
    )
    op.create_index(op.f("ix_watchdog_flags_owner_id"), "watchdog_flags", ["owner_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_watchdog_flags_owner_id"), table_name="watchdog_flags")
    op.drop_table("watchdog_flags")
