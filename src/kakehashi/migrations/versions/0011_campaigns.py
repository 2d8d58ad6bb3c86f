"""campaigns: outbound campaigns, leads, the do-not-call list, refusals

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 02:50:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import kakehashi.kit.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("caller_id", sa.String(length=20), nullable=False),
        sa.Column("dial_mode", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("goal", sa.Integer(), nullable=True),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("opening_statement", sa.Text(), nullable=False),
        sa.Column(
            "windows", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("holidays_off", sa.Boolean(), nullable=False),
        sa.Column("night_reason", sa.Text(), nullable=True),
        sa.Column(
            "retry_rules", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("created_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("dial_mode IN ('preview', 'progressive')", name=op.f("ck_campaigns_dial_mode")),
        sa.CheckConstraint("kind IN ('appointment', 'research', 'marketing', 'sales')", name=op.f("ck_campaigns_kind")),
        sa.CheckConstraint("status IN ('draft', 'running', 'paused', 'stopped')", name=op.f("ck_campaigns_status")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_campaigns_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_campaigns_tenant_id_name")),
    )
    op.create_table(
        "dnc_numbers",
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("e164", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("added_by", sa.String(length=100), nullable=False),
        sa.Column("added_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_dnc_numbers_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dnc_numbers")),
        sa.UniqueConstraint("tenant_id", "e164", name=op.f("uq_dnc_numbers_tenant_id_e164")),
    )
    op.create_table(
        "leads",
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("attempts_today", sa.Integer(), nullable=False),
        sa.Column("attempts_day", sa.Date(), nullable=True),
        sa.Column("last_result", sa.String(length=40), nullable=True),
        sa.Column("next_call_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("callback_agent", sa.String(length=100), nullable=True),
        sa.Column("reserved_by", sa.String(length=100), nullable=True),
        sa.Column("reserved_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.CheckConstraint(
            "status IN ('new', 'in_progress', 'callback', 'done', 'unworkable', 'excluded')",
            name=op.f("ck_leads_status"),
        ),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_leads_campaign_id_campaigns")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_leads_customer_id_customers")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_leads_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
        sa.UniqueConstraint("campaign_id", "phone", name=op.f("uq_leads_campaign_id_phone")),
    )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.create_index("ix_leads_campaign_status_next", ["campaign_id", "status", "next_call_at"], unique=False)

    op.create_table(
        "refusals",
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("e164", sa.String(length=20), nullable=False),
        sa.Column("scope", sa.String(length=12), nullable=False),
        sa.Column("campaign_id", ID, nullable=True),
        sa.Column("by", sa.String(length=100), nullable=False),
        sa.Column("at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(length=100), nullable=True),
        sa.Column("lifted_reason", sa.Text(), nullable=True),
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_refusals_campaign_id_campaigns")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_refusals_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refusals")),
    )
    with op.batch_alter_table("refusals", schema=None) as batch_op:
        batch_op.create_index("ix_refusals_tenant_e164", ["tenant_id", "e164"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("refusals", schema=None) as batch_op:
        batch_op.drop_index("ix_refusals_tenant_e164")

    op.drop_table("refusals")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index("ix_leads_campaign_status_next")

    op.drop_table("leads")
    op.drop_table("dnc_numbers")
    op.drop_table("campaigns")
