"""Webhook signing keys of notification channels are sealed (envelope encryption under
the KEK, bound to owner + channel + key version); the plaintext column goes.

Sealing needs the KEK, which the store may not touch: the caller of the upgrade
(``services.instance.upgrade_database``) hands in ``channel_key_sealer`` through the
Alembic config's ``attributes``: a zero-argument callable that returns either the sealing
function ``(owner_id, channel_id, version, secret) -> (kek_id, wrapped_key, nonce,
ciphertext)`` or a string saying why no KEK is reachable here. It is called only when a
channel actually holds a plaintext key.

Without a reachable KEK the upgrade stops *before changing anything* and says what to do
(run it where the KEK or the signer is), unless the caller sets
``clear_unsealable_channel_keys`` (``sealbot db upgrade --clear-unsealable-webhook-keys``):
then the channels are kept, their keys are emptied and each channel's ``last_error`` tells
its owner to issue a new key. No channel is ever dropped.

Downgrading cannot put the plaintext back (that needs the KEK and would undo the point):
the channels are kept with no key, and say so in ``last_error``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NO_KEY = "the webhook's signing key was removed by an upgrade that could not seal it: issue a new key"
DOWNGRADED = "the webhook's signing key was removed by a downgrade: issue a new key"

_channels = sa.table("notification_channels", sa.column("id", sa.Integer), sa.column("owner_id", sa.Integer),
                     sa.column("kind", sa.String),
                     sa.column("webhook_secret", sa.String), sa.column("secret_kek_id", sa.String),
                     sa.column("secret_wrapped_key", sa.LargeBinary), sa.column("secret_nonce", sa.LargeBinary),
                     sa.column("secret_ciphertext", sa.LargeBinary), sa.column("secret_version", sa.Integer),
                     sa.column("last_error", sa.Text), sa.column("last_error_at", sa.DateTime(timezone=True)))


def _sealer() -> Callable[[int, int, int, str], tuple[str, bytes, bytes, bytes]] | None:
    """The sealing function, or None when the caller allowed clearing unsealable keys;
    raises (before any change) when neither is available."""
    attributes: dict[str, Any] = context.config.attributes
    factory = attributes.get("channel_key_sealer")
    found = factory() if factory is not None else "no KEK was offered to this upgrade"
    if not isinstance(found, str):
        return found  # type: ignore[no-any-return]
    if attributes.get("clear_unsealable_channel_keys"):
        return None
    raise RuntimeError(
        f"migration 0008: notification channels hold webhook signing keys in plaintext and they must be "
        f"sealed, but {found}. Run `sealbot db upgrade` where the KEK is readable (kek_provider file/pkcs11/vault "
        f"settings of the signer) or, with signer = \"socket\", while `sealbot signer` runs; or run "
        f"`sealbot db upgrade --clear-unsealable-webhook-keys` to keep the channels without keys (their owners "
        f"must issue new ones). Nothing was changed.")


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_channels.c.id, _channels.c.owner_id, _channels.c.webhook_secret).where(
        _channels.c.webhook_secret.is_not(None), _channels.c.webhook_secret != "")).all()
    sealed: list[dict[str, Any]] = []
    cleared: list[int] = []
    if rows:
        seal = _sealer()  # every seal happens before the first change: a failure changes nothing
        for row in rows:
            if seal is None:
                cleared.append(int(row.id))
                continue
            kek_id, wrapped, nonce, ciphertext = seal(int(row.owner_id), int(row.id), 1, str(row.webhook_secret))
            sealed.append({"row_id": int(row.id), "k": kek_id, "w": wrapped, "n": nonce, "c": ciphertext})
    with op.batch_alter_table("notification_channels") as batch:
        batch.add_column(sa.Column("secret_kek_id", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("secret_wrapped_key", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("secret_nonce", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("secret_version", sa.Integer(), nullable=False, server_default="0"))
    if sealed:
        conn.execute(sa.update(_channels).where(_channels.c.id == sa.bindparam("row_id")).values(
            secret_kek_id=sa.bindparam("k"), secret_wrapped_key=sa.bindparam("w"), secret_nonce=sa.bindparam("n"),
            secret_ciphertext=sa.bindparam("c"), secret_version=1), sealed)
    if cleared:
        conn.execute(sa.update(_channels).where(_channels.c.id.in_(cleared)).values(
            last_error=NO_KEY, last_error_at=datetime.now(UTC)))
    # overwrite the plaintext in place first (SQLite runs with secure_delete), then drop the column
    conn.execute(sa.update(_channels).values(webhook_secret=None))
    with op.batch_alter_table("notification_channels") as batch:
        batch.drop_column("webhook_secret")


def downgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("notification_channels") as batch:
        batch.add_column(sa.Column("webhook_secret", sa.String(length=128), nullable=True))
    conn.execute(sa.update(_channels).where(_channels.c.kind == "webhook").values(
        last_error=DOWNGRADED, last_error_at=datetime.now(UTC)))
    with op.batch_alter_table("notification_channels") as batch:
        batch.drop_column("secret_version")
        batch.drop_column("secret_ciphertext")
        batch.drop_column("secret_nonce")
        batch.drop_column("secret_wrapped_key")
        batch.drop_column("secret_kek_id")
