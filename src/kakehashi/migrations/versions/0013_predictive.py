"""predictive dialing: campaign settings for pacing and answering-machine detection

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 18:40:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("predictive", JSON, nullable=False, server_default=sa.text("'{}'")))
        batch_op.add_column(sa.Column("amd", JSON, nullable=False, server_default=sa.text("'{}'")))
        batch_op.drop_constraint(batch_op.f("ck_campaigns_dial_mode"), type_="check")
        batch_op.create_check_constraint("dial_mode", "dial_mode IN ('preview', 'progressive', 'predictive')")


def downgrade() -> None:
    op.execute("UPDATE campaigns SET dial_mode = 'progressive' WHERE dial_mode = 'predictive'")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_campaigns_dial_mode"), type_="check")
        batch_op.create_check_constraint("dial_mode", "dial_mode IN ('preview', 'progressive')")
        batch_op.drop_column("amd")
        batch_op.drop_column("predictive")
