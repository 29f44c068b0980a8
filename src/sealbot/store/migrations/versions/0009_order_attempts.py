"""Orders: ``attempted_at``, the time the latest send attempt of an order was signed with.

The order manager journals it (committed) before each request goes out and signs the
request with it, so the exchange refuses the request once its receive window has
passed: a worker paused between journal and request can no longer place the order late,
after the partition's new owner has re-sent it. Rows from before this revision have
none; the engine then falls back to ``created_at``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("attempted_at")
