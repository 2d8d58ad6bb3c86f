"""calls.consult_agent (the colleague consulted for an attended transfer: they may see the call) and
calls.notes (the agent's notes from the wrap-up, shown on the customer's timeline)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 17:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("consult_agent", sa.String(length=60), nullable=True))
        batch.add_column(sa.Column("notes", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("notes")
        batch.drop_column("consult_agent")
