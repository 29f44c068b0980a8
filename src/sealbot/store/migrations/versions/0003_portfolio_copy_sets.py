"""Portfolio and copy trading: the user's valuation currency, balance snapshots (one
header per account refresh plus one line per asset), copy sets (bot groups and their
member bots, one per account, each with its own sizing) and per-account guard limits.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
DEC = sa.String(80).with_variant(sa.Numeric(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "user_settings",
        sa.Column("user_id", ID, autoincrement=False, nullable=False),
        sa.Column("valuation_currency", sa.String(length=20), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_settings_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_settings")),
    )
    op.create_table(
        "portfolio_snapshots",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("taken_at", TS, nullable=False),
        sa.Column("currency", sa.String(length=20), nullable=False),
        sa.Column("total_value", DEC, nullable=False),
        sa.Column("unvalued", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["exchange_accounts.id"],
                                name=op.f("fk_portfolio_snapshots_account_id_exchange_accounts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_portfolio_snapshots_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portfolio_snapshots")),
    )
    op.create_index(op.f("ix_portfolio_snapshots_owner_id"), "portfolio_snapshots", ["owner_id"])
    op.create_index("ix_portfolio_snapshots_account_id_taken_at", "portfolio_snapshots", ["account_id", "taken_at"])
    op.create_table(
        "balance_snapshots",
        sa.Column("id", ID, nullable=False),
        sa.Column("snapshot_id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("asset", sa.String(length=20), nullable=False),
        sa.Column("free", DEC, nullable=False),
        sa.Column("used", DEC, nullable=False),
        sa.Column("total", DEC, nullable=False),
        sa.Column("price", DEC, nullable=True),
        sa.Column("value", DEC, nullable=True),
        sa.Column("route", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["exchange_accounts.id"],
                                name=op.f("fk_balance_snapshots_account_id_exchange_accounts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_balance_snapshots_owner_id_users")),
        sa.ForeignKeyConstraint(["snapshot_id"], ["portfolio_snapshots.id"],
                                name=op.f("fk_balance_snapshots_snapshot_id_portfolio_snapshots"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_snapshots")),
    )
    op.create_index(op.f("ix_balance_snapshots_owner_id"), "balance_snapshots", ["owner_id"])
    op.create_index(op.f("ix_balance_snapshots_snapshot_id"), "balance_snapshots", ["snapshot_id"])
    op.create_table(
        "bot_groups",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("webhook_secret_hash", sa.String(length=255), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("kind IN ('dca','grid','smart','signal')", name=op.f("ck_bot_groups_kind")),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_bot_groups_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_groups")),
    )
    op.create_index(op.f("ix_bot_groups_owner_id"), "bot_groups", ["owner_id"])
    op.create_table(
        "bot_group_members",
        sa.Column("bot_id", ID, autoincrement=False, nullable=False),
        sa.Column("group_id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("multiplier", DEC, nullable=True),
        sa.Column("base_size", DEC, nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["exchange_accounts.id"],
                                name=op.f("fk_bot_group_members_account_id_exchange_accounts")),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"], name=op.f("fk_bot_group_members_bot_id_bots"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["group_id"], ["bot_groups.id"], name=op.f("fk_bot_group_members_group_id_bot_groups"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_bot_group_members_owner_id_users")),
        sa.PrimaryKeyConstraint("bot_id", name=op.f("pk_bot_group_members")),
        sa.UniqueConstraint("group_id", "account_id", name=op.f("uq_bot_group_members_group_id_account_id")),
    )
    op.create_index(op.f("ix_bot_group_members_group_id"), "bot_group_members", ["group_id"])
    op.create_index(op.f("ix_bot_group_members_owner_id"), "bot_group_members", ["owner_id"])
    op.create_table(
        "account_guard_limits",
        sa.Column("account_id", ID, autoincrement=False, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["exchange_accounts.id"],
                                name=op.f("fk_account_guard_limits_account_id_exchange_accounts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_account_guard_limits_owner_id_users")),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_guard_limits")),
    )
    op.create_index(op.f("ix_account_guard_limits_owner_id"), "account_guard_limits", ["owner_id"])


def downgrade() -> None:
    for table in ("account_guard_limits", "bot_group_members", "bot_groups", "balance_snapshots",
                  "portfolio_snapshots", "user_settings"):
        op.drop_table(table)
