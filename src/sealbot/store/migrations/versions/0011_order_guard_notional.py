"""Orders: ``guard_notional``, what an order counts against its owners' daily notional limits.

The pre-trade guard judges each order's notional (price x amount, or for a market order
the reference-price estimate it used) and refuses an order that would take the user's
or the account's total for the UTC day over its limit. That total used to live in the
engine's memory and restarted from zero with the process (and each scale-out worker
counted its own). The engine now stores the judged notional with the journalled order and
sums the day's orders in the transaction that journals the next one, so a restart,
another process or another worker sees the same total.

NULL when the order does not count: an order that closes a position (never held back by
the spend limits), one the guard refused, and every order from before this revision
(the day of the upgrade counts only orders journalled after it). The index serves the
per-user sum over one UTC day (the account's total is the part of it on that account).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Exact decimals: text on SQLite (its NUMERIC goes through float), unconstrained NUMERIC on PostgreSQL.
DEC = sa.String(80).with_variant(sa.Numeric(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("guard_notional", DEC, nullable=True))
    op.create_index("ix_orders_owner_id_created_at", "orders", ["owner_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_orders_owner_id_created_at", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("guard_notional")
