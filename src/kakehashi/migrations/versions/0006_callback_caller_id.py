"""callbacks.caller_id: the number shown when we call back, kept across restarts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 14:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("callbacks") as batch:
        batch.add_column(sa.Column("caller_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("caller_id")
