"""calls: the call model, its state history, CDRs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:19:51.032471
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import kakehashi.kit.db
import kakehashi.kit.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("driver", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=100), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("ani_raw", sa.String(length=40), nullable=False),
        sa.Column("ani_e164", sa.String(length=20), nullable=True),
        sa.Column("dnis", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("agent", sa.String(length=60), nullable=True),
        sa.Column("queue", sa.String(length=60), nullable=True),
        sa.Column("campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("digits", sa.String(length=40), nullable=True),
        sa.Column("offered_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ivr_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("queued_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ringing_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("connected_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("wrap_up_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("held_since", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("hold_seconds", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("end_cause", sa.String(length=20), nullable=True),
        sa.Column("disposition", sa.String(length=40), nullable=True),
        sa.Column("recording_ref", sa.String(length=200), nullable=True),
        sa.Column("recording_state", sa.String(length=10), nullable=True),
        sa.Column("transferred_to", sa.String(length=60), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_calls_customer_id_customers"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_calls_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
    )
    op.create_index("ix_calls_tenant_offered_at", "calls", ["tenant_id", "offered_at"], unique=False)
    op.create_index("ix_calls_tenant_state", "calls", ["tenant_id", "state"], unique=False)
    op.create_index("uq_calls_driver_ref", "calls", ["driver", "ref"], unique=True)
    op.create_table(
        "call_transitions",
        sa.Column("call_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("from_state", sa.String(length=12), nullable=True),
        sa.Column("to_state", sa.String(length=12), nullable=False),
        sa.Column("at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "detail", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_transitions_call_id_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_transitions")),
    )
    op.create_index(op.f("ix_call_transitions_call_id"), "call_transitions", ["call_id"], unique=False)
    op.create_table(
        "cdrs",
        sa.Column("call_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("ani_e164", sa.String(length=20), nullable=True),
        sa.Column("dnis", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("agent", sa.String(length=60), nullable=True),
        sa.Column("queue", sa.String(length=60), nullable=True),
        sa.Column("campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("started_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ring_seconds", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("queue_seconds", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("talk_seconds", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("hold_seconds", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("wrap_up_seconds", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("final_state", sa.String(length=12), nullable=False),
        sa.Column("end_cause", sa.String(length=20), nullable=True),
        sa.Column("disposition", sa.String(length=40), nullable=True),
        sa.Column("recording_ref", sa.String(length=200), nullable=True),
        sa.Column("billed_seconds", sa.Integer(), nullable=True),
        sa.Column("cost_yen", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("created_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_cdrs_call_id_calls"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_cdrs_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cdrs")),
        sa.UniqueConstraint("call_id", name=op.f("uq_cdrs_call_id")),
    )
    op.create_index("ix_cdrs_tenant_started_at", "cdrs", ["tenant_id", "started_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_cdrs_tenant_started_at", table_name="cdrs")
    op.drop_table("cdrs")
    op.drop_index(op.f("ix_call_transitions_call_id"), table_name="call_transitions")
    op.drop_table("call_transitions")
    op.drop_index("uq_calls_driver_ref", table_name="calls")
    op.drop_index("ix_calls_tenant_state", table_name="calls")
    op.drop_index("ix_calls_tenant_offered_at", table_name="calls")
    op.drop_table("calls")
