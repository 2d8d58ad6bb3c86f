"""queues.sl_target_pct (the service level a queue aims for, in %) and queues.wait_alert_s (the wait that raises
a wallboard alert; NULL: the queue's T)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queues") as batch:
        batch.add_column(sa.Column("sl_target_pct", sa.Integer(), nullable=False, server_default="80"))
        batch.add_column(sa.Column("wait_alert_s", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queues") as batch:
        batch.drop_column("wait_alert_s")
        batch.drop_column("sl_target_pct")
