"""Initial schema: users, accounts, sealed credentials, KEK rotations, bots, deals,
orders, fills, alerts, signals and the append-only, hash-chained audit log.

Types are spelled out here (not imported from the models) so this revision stays the
same when the models change later. Beyond the tables it

- seeds ``audit_head`` (the chain's genesis: seq 0, hash of 64 zeros);
- creates triggers that refuse UPDATE and DELETE on ``audit_log`` (and TRUNCATE on
  PostgreSQL), so an application bug or a compromised app role cannot rewrite history;
- on PostgreSQL, when an application role is named (``SEALBOT_DB_APP_ROLE`` or the
  ``sealbot.app_role`` setting) and exists, restricts it to INSERT and SELECT on
  ``audit_log``. If the migrating role may not do that, it says so and goes on.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
# Exact decimals: text on SQLite (its NUMERIC goes through float), unconstrained NUMERIC on PostgreSQL.
DEC = sa.String(80).with_variant(sa.Numeric(), "postgresql")
GENESIS = "0" * 64

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END""",
]

_PG_TRIGGERS = [
    """CREATE OR REPLACE FUNCTION sealbot_audit_log_refuse() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
           USING ERRCODE = 'insufficient_privilege';
       END $$""",
    """CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
       FOR EACH ROW EXECUTE FUNCTION sealbot_audit_log_refuse()""",
    """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
       FOR EACH STATEMENT EXECUTE FUNCTION sealbot_audit_log_refuse()""",
]

# Runs as one DO block so a missing privilege is caught in PL/pgSQL (the migration's
# transaction survives) and reported as a NOTICE instead of failing the upgrade.
_PG_GRANTS = """
DO $grant$
DECLARE
  app_role text := %(role)s;
BEGIN
  IF app_role IS NULL OR app_role = '' THEN
    app_role := current_setting('sealbot.app_role', true);
  END IF;
  IF app_role IS NULL OR app_role = '' THEN
    RETURN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app_role) THEN
    RAISE NOTICE 'sealbot: app role %% does not exist; audit_log grants skipped', app_role;
    RETURN;
  END IF;
  BEGIN
    EXECUTE format('REVOKE ALL ON audit_log FROM %%I', app_role);
    EXECUTE format('GRANT SELECT, INSERT ON audit_log TO %%I', app_role);
    EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE audit_log_id_seq TO %%I', app_role);
    EXECUTE format('REVOKE ALL ON audit_head FROM %%I', app_role);
    EXECUTE format('GRANT SELECT, UPDATE, INSERT ON audit_head TO %%I', app_role);
  EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
    RAISE NOTICE 'sealbot: cannot manage grants for %%; audit_log grants skipped', app_role;
  END;
END
$grant$;
"""


def _app_role_literal() -> str:
    role = os.environ.get("SEALBOT_DB_APP_ROLE", "")
    return "'" + role.replace("'", "''") + "'"


def _create_audit_protection() -> None:
    bind = op.get_bind()
    op.execute(sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :h)").bindparams(h=GENESIS))
    if bind.dialect.name == "sqlite":
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)
    elif bind.dialect.name == "postgresql":
        for statement in _PG_TRIGGERS:
            op.execute(statement)
        op.execute(_PG_GRANTS % {"role": _app_role_literal()})


def _drop_audit_protection() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    elif bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS sealbot_audit_log_refuse()")


def upgrade() -> None:

    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", ID, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", ID, nullable=False),
        sa.Column("seq", ID, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("seq", name=op.f("uq_audit_log_seq")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_action"), ["action"], unique=False)

    op.create_table(
        "kek_rotations",
        sa.Column("id", ID, nullable=False),
        sa.Column("from_kek", sa.String(length=128), nullable=False),
        sa.Column("to_kek", sa.String(length=128), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("cursor", ID, nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kek_rotations")),
    )
    op.create_table(
        "users",
        sa.Column("id", ID, nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("totp_secret_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("disabled_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "exchange_accounts",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("exchange", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=120), nullable=False),
        sa.Column("is_paper", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("allowed_pairs", sa.JSON(), nullable=True),
        sa.Column("permission_report", sa.JSON(), nullable=True),
        sa.Column("permission_checked_at", TS, nullable=True),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.CheckConstraint(
            "status IN ('active','paused','flagged','revoked')", name=op.f("ck_exchange_accounts_status")
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_exchange_accounts_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_accounts")),
    )
    with op.batch_alter_table("exchange_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exchange_accounts_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "bots",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("pause_reason", sa.Text(), nullable=True),
        sa.Column("webhook_secret_hash", sa.String(length=255), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("kind IN ('dca','grid','smart','signal')", name=op.f("ck_bots_kind")),
        sa.CheckConstraint("status IN ('stopped','running','paused','error')", name=op.f("ck_bots_status")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["exchange_accounts.id"], name=op.f("fk_bots_account_id_exchange_accounts")
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_bots_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bots")),
    )
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bots_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_bots_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "credentials",
        sa.Column("id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("kek_id", sa.String(length=128), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("api_key_hint", sa.String(length=4), nullable=False),
        sa.Column("hsm_label", sa.String(length=128), nullable=True),
        sa.Column("public_key", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("destroyed_at", TS, nullable=True),
        sa.CheckConstraint("algorithm IN ('hmac-sha256','ed25519','rsa')", name=op.f("ck_credentials_algorithm")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["exchange_accounts.id"], name=op.f("fk_credentials_account_id_exchange_accounts")
        ),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_credentials_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("account_id", "version", name=op.f("uq_credentials_account_id_version")),
    )
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.create_index("ix_credentials_kek_id_id", ["kek_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_credentials_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "alerts",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=True),
        sa.Column("bot_id", ID, nullable=True),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("acknowledged_at", TS, nullable=True),
        sa.Column("deliveries", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["exchange_accounts.id"],
            name=op.f("fk_alerts_account_id_exchange_accounts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"], name=op.f("fk_alerts_bot_id_bots"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_alerts_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "deals",
        sa.Column("id", ID, nullable=False),
        sa.Column("bot_id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("no", sa.Integer(), nullable=False),
        sa.Column("pair", sa.String(length=42), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("close_reason", sa.String(length=32), nullable=True),
        sa.Column("bought", DEC, nullable=False),
        sa.Column("spent", DEC, nullable=False),
        sa.Column("sold", DEC, nullable=False),
        sa.Column("received", DEC, nullable=False),
        sa.Column("fees_quote", DEC, nullable=False),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"], name=op.f("fk_deals_bot_id_bots"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_deals_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deals")),
        sa.UniqueConstraint("bot_id", "no", name=op.f("uq_deals_bot_id_no")),
    )
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deals_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "orders",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("bot_id", ID, nullable=True),
        sa.Column("deal_no", sa.Integer(), nullable=True),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("exchange_order_id", sa.String(length=128), nullable=True),
        sa.Column("pair", sa.String(length=42), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("amount", DEC, nullable=False),
        sa.Column("price", DEC, nullable=True),
        sa.Column("stop_price", DEC, nullable=True),
        sa.Column("time_in_force", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("filled", DEC, nullable=False),
        sa.Column("average_price", DEC, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["exchange_accounts.id"], name=op.f("fk_orders_account_id_exchange_accounts")
        ),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"], name=op.f("fk_orders_bot_id_bots"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_orders_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_orders_client_order_id")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_bot_id"), ["bot_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "signals",
        sa.Column("id", ID, nullable=False),
        sa.Column("bot_id", ID, nullable=False),
        sa.Column("signal_id", sa.String(length=128), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"], name=op.f("fk_signals_bot_id_bots"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signals")),
        sa.UniqueConstraint("bot_id", "signal_id", name=op.f("uq_signals_bot_id_signal_id")),
    )
    op.create_table(
        "fills",
        sa.Column("id", ID, nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("trade_id", sa.String(length=128), nullable=False),
        sa.Column("price", DEC, nullable=False),
        sa.Column("amount", DEC, nullable=False),
        sa.Column("fee", DEC, nullable=False),
        sa.Column("fee_currency", sa.String(length=20), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("is_maker", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_fills_order_id_orders"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_fills_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
        sa.UniqueConstraint("order_id", "trade_id", name=op.f("uq_fills_order_id_trade_id")),
    )
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fills_owner_id"), ["owner_id"], unique=False)
    _create_audit_protection()


def downgrade() -> None:
    _drop_audit_protection()

    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fills_owner_id"))

    op.drop_table("fills")
    op.drop_table("signals")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_owner_id"))
        batch_op.drop_index(batch_op.f("ix_orders_bot_id"))
        batch_op.drop_index(batch_op.f("ix_orders_account_id"))

    op.drop_table("orders")
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deals_owner_id"))

    op.drop_table("deals")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_owner_id"))

    op.drop_table("alerts")
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credentials_owner_id"))
        batch_op.drop_index("ix_credentials_kek_id_id")

    op.drop_table("credentials")
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bots_owner_id"))
        batch_op.drop_index(batch_op.f("ix_bots_account_id"))

    op.drop_table("bots")
    with op.batch_alter_table("exchange_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exchange_accounts_owner_id"))

    op.drop_table("exchange_accounts")
    op.drop_table("users")
    op.drop_table("kek_rotations")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_action"))

    op.drop_table("audit_log")
    op.drop_table("audit_head")
