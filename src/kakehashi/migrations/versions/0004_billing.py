"""billing: per-second rate plans and their rates

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 13:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import kakehashi.kit.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Exact decimals: NUMERIC on PostgreSQL, decimal text on SQLite (billing.models.YenRate).
YEN_RATE = sa.Numeric(12, 6).with_variant(sa.String(24), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rate_plans",
        sa.Column("tenant_id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("min_billable_seconds", sa.Integer(), nullable=False),
        sa.Column("increment_seconds", sa.Integer(), nullable=False),
        sa.Column("rounding", sa.String(length=8), nullable=False),
        sa.Column("yen_decimals", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("created_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("min_billable_seconds BETWEEN 0 AND 3600", name=op.f("ck_rate_plans_min_billable_seconds")),
        sa.CheckConstraint("increment_seconds BETWEEN 1 AND 3600", name=op.f("ck_rate_plans_increment_seconds")),
        sa.CheckConstraint("rounding IN ('up', 'half_up', 'down')", name=op.f("ck_rate_plans_rounding")),
        sa.CheckConstraint("yen_decimals IN (0, 2)", name=op.f("ck_rate_plans_yen_decimals")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_rate_plans_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_plans")),
        sa.UniqueConstraint(
            "tenant_id", "name", "effective_from", name=op.f("uq_rate_plans_tenant_id_name_effective_from")
        ),
    )
    op.create_index(op.f("ix_rate_plans_tenant_id"), "rate_plans", ["tenant_id"], unique=False)
    op.create_table(
        "rates",
        sa.Column("plan_id", BIG_ID, nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("yen_per_second", YEN_RATE, nullable=False),
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.CheckConstraint("direction IN ('outbound', 'inbound')", name=op.f("ck_rates_direction")),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["rate_plans.id"], name=op.f("fk_rates_plan_id_rate_plans"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rates")),
        sa.UniqueConstraint("plan_id", "direction", "kind", name=op.f("uq_rates_plan_id_direction_kind")),
    )


def downgrade() -> None:
    op.drop_table("rates")
    op.drop_index(op.f("ix_rate_plans_tenant_id"), table_name="rate_plans")
    op.drop_table("rate_plans")
