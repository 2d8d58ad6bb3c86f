"""login throttle per (user name, source address) plus a name-wide row; tokens and sessions of disabled users
revoked

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 01:30:00
"""

import sqlalchemy as sa
from alembic import op

import kakehashi.kit.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The throttle holds only short-lived counters: a new table, not a conversion (a lock running now ends).
    op.drop_table("login_throttle")
    op.create_table(
        "login_throttle",
        sa.Column("username", sa.String(length=60), nullable=False),
        sa.Column("origin", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("username", "origin", name=op.f("pk_login_throttle")),
    )
    # Disabling a user now revokes their tokens and sessions; those of users disabled before must not come
    # back when they are enabled again.
    now = sa.func.current_timestamp()
    users = sa.table("users", sa.column("id"), sa.column("active"))
    inactive = sa.select(users.c.id).where(users.c.active == sa.false())
    for name in ("api_tokens", "web_sessions"):
        table = sa.table(name, sa.column("user_id"), sa.column("revoked_at"))
        op.execute(
            table.update().where(table.c.user_id.in_(inactive), table.c.revoked_at.is_(None)).values(revoked_at=now)
        )


def downgrade() -> None:
    op.drop_table("login_throttle")
    op.create_table(
        "login_throttle",
        sa.Column("username", sa.String(length=60), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", kakehashi.kit.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_login_throttle")),
    )
