"""outbound: lists, segments, attempts, campaign settings

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 04:13:44.030755
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import kakehashi.kit.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("criteria", JSON, nullable=False),
        sa.Column("campaign_id", ID, nullable=True),
        sa.Column("schedule", JSON, nullable=True),
        sa.Column("last_run_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_run_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("created_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_segments_campaign_id_campaigns")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_segments_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_segments_tenant_id_name")),
    )
    op.create_table(
        "campaign_lists",
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("source_id", ID, nullable=True),
        sa.Column("segment_id", ID, nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_loaded", sa.Integer(), nullable=False),
        sa.Column("rows_bad", sa.Integer(), nullable=False),
        sa.Column("rows_scrubbed", sa.Integer(), nullable=False),
        sa.Column("sim_outcomes", JSON, nullable=True),
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_lists_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(["segment_id"], ["segments.id"], name=op.f("fk_campaign_lists_segment_id_segments")),
        sa.ForeignKeyConstraint(
            ["source_id"], ["data_sources.id"], name=op.f("fk_campaign_lists_source_id_data_sources")
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_campaign_lists_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_lists")),
    )
    with op.batch_alter_table("campaign_lists", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_lists_campaign_id"), ["campaign_id"], unique=False)

    op.create_table(
        "lead_attempts",
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("lead_id", ID, nullable=False),
        sa.Column("list_id", ID, nullable=True),
        sa.Column("agent", sa.String(length=100), nullable=True),
        sa.Column("mode", sa.String(length=12), nullable=False),
        sa.Column("call_ref", sa.String(length=100), nullable=True),
        sa.Column("result", sa.String(length=12), nullable=True),
        sa.Column("disposition", sa.String(length=40), nullable=True),
        sa.Column("human", sa.Boolean(), nullable=False),
        sa.Column("contact", sa.Boolean(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("refusal", sa.Boolean(), nullable=False),
        sa.Column("opening_confirmed_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("skip_reason", sa.String(length=200), nullable=True),
        sa.Column("started_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("talk_seconds", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("wrap_seconds", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.CheckConstraint(
            "result IN ('answered', 'busy', 'no_answer', 'machine', 'invalid', 'failed', 'abandoned', 'skipped')",
            name=op.f("ck_lead_attempts_result"),
        ),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_lead_attempts_campaign_id_campaigns")),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_lead_attempts_lead_id_leads")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_lead_attempts_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_attempts")),
    )
    with op.batch_alter_table("lead_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lead_attempts_call_ref"), ["call_ref"], unique=False)
        batch_op.create_index("ix_lead_attempts_campaign_started", ["campaign_id", "started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_lead_attempts_lead_id"), ["lead_id"], unique=False)

    waiting = sa.text("status = 'callback'")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index("ix_leads_campaign_status_next")
        batch_op.create_index("ix_leads_campaign_status_next", ["campaign_id", "status", "next_call_at", "id"])
        batch_op.create_index("ix_leads_callbacks_by_agent", ["tenant_id", "callback_agent", "next_call_at"],
                              unique=False, postgresql_where=waiting, sqlite_where=waiting)  # fmt: skip

    blocked = sa.text("do_not_contact OR outbound_excluded")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index("ix_customers_tenant_blocked", ["tenant_id", "id"], unique=False,
                              postgresql_where=blocked, sqlite_where=blocked)  # fmt: skip

    with op.batch_alter_table("cdrs", schema=None) as batch_op:
        batch_op.create_index("ix_cdrs_tenant_ani_e164", ["tenant_id", "ani_e164"], unique=False)
        batch_op.create_index("ix_cdrs_tenant_dnis", ["tenant_id", "dnis"], unique=False)

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lead_id", ID, nullable=True))

    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agents", JSON, nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column("queues", JSON, nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column("result_codes", JSON, nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column("ring_timeout_s", sa.Integer(), nullable=False, server_default="30"))
        batch_op.add_column(sa.Column("preview_autodial_s", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("product_line", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("refusal_scope", sa.String(length=12), nullable=False, server_default="company"))
        batch_op.create_check_constraint("refusal_scope", "refusal_scope IN ('company', 'product_line')")

    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("list_id", ID, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_leads_list_id_campaign_lists"), "campaign_lists", ["list_id"], ["id"]
        )

    with op.batch_alter_table("refusals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("product_line", sa.String(length=60), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refusals", schema=None) as batch_op:
        batch_op.drop_column("product_line")

    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_leads_list_id_campaign_lists"), type_="foreignkey")
        batch_op.drop_column("list_id")

    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_campaigns_refusal_scope"), type_="check")
        batch_op.drop_column("refusal_scope")
        batch_op.drop_column("product_line")
        batch_op.drop_column("preview_autodial_s")
        batch_op.drop_column("ring_timeout_s")
        batch_op.drop_column("result_codes")
        batch_op.drop_column("queues")
        batch_op.drop_column("agents")

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("lead_id")

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_tenant_blocked")

    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index("ix_leads_callbacks_by_agent")
        batch_op.drop_index("ix_leads_campaign_status_next")
        batch_op.create_index("ix_leads_campaign_status_next", ["campaign_id", "status", "next_call_at"])

    with op.batch_alter_table("cdrs", schema=None) as batch_op:
        batch_op.drop_index("ix_cdrs_tenant_dnis")
        batch_op.drop_index("ix_cdrs_tenant_ani_e164")

    with op.batch_alter_table("lead_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_attempts_lead_id"))
        batch_op.drop_index("ix_lead_attempts_campaign_started")
        batch_op.drop_index(batch_op.f("ix_lead_attempts_call_ref"))

    op.drop_table("lead_attempts")
    with op.batch_alter_table("campaign_lists", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_lists_campaign_id"))

    op.drop_table("campaign_lists")
    op.drop_table("segments")
