"""dispositions: each tenant's result codes (対応結果) for the wrap-up, in order; retired ones kept

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 06:30:00
"""

import sqlalchemy as sa
from alembic import op

import kakehashi.kit.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dispositions",
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("label_en", sa.String(length=60), nullable=True),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("created_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('sale', 'contact', 'callback', 'no_contact', 'other')", name=op.f("ck_dispositions_kind")
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_dispositions_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispositions")),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_dispositions_tenant_id_code")),
    )


def downgrade() -> None:
    op.drop_table("dispositions")
