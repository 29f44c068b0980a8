"""``ip_throttle``: attempts per client address, so logins and sign-ups are limited per IP.

The login lockout (``login_throttle``, per e-mail) does not stop one address trying one
password across many e-mails, each try costing an argon2 hash (64 MiB), nor one address
creating accounts without end. One row per (scope, address): the attempts of the current
fixed window; rows of a passed window are deleted as new attempts come.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ip_throttle",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "ip", name=op.f("pk_ip_throttle")),
    )


def downgrade() -> None:
    op.drop_table("ip_throttle")
