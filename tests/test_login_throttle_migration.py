"""Migration 0010: the login throttle per (name, address), and no token of a user disabled before it comes back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, insert, inspect, select

from conftest import PG_URL
from kakehashi.kit import migrate
from kakehashi.kit.db import make_engine, utcnow
from kakehashi.kit.dbadmin import recreate_database


@pytest.fixture
def fresh(engine: Engine, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of the test's own (migrated step by step here)."""
    if engine.dialect.name == "sqlite":
        db = make_engine(f"sqlite:///{tmp_path / 'migrations.db'}")
        yield db
        db.dispose()
        return
    url = PG_URL + "_migration"
    recreate_database(url)
    db = make_engine(url)
    yield db
    db.dispose()
    recreate_database(url, create=False)


def test_0010_revokes_what_disabled_users_held_and_keys_the_throttle_by_address(fresh: Engine) -> None:
    migrate.upgrade(fresh, "0009")
    tables = MetaData()
    tables.reflect(fresh, only=["tenants", "users", "api_tokens", "web_sessions"])  # the schema as 0009 left it
    now = utcnow()
    with fresh.begin() as conn:
        tenant = conn.execute(insert(tables.tables["tenants"]).values(
            code="center", name="center", client_sees_personal_data=False, created_at=now, updated_at=now,
        ).returning(tables.tables["tenants"].c.id)).scalar_one()  # fmt: skip
        for active in (True, False):
            user = conn.execute(insert(tables.tables["users"]).values(
                tenant_id=tenant, username=f"user-{active}".lower(), display_name="x", role="operator",
                password_hash="x", active=active, password_changed_at=now, created_at=now, updated_at=now,
            ).returning(tables.tables["users"].c.id)).scalar_one()  # fmt: skip
            conn.execute(insert(tables.tables["api_tokens"]).values(
                user_id=user, name="crm", secret_hash=f"t-{active}", prefix="kkh_x", created_at=now))  # fmt: skip
            conn.execute(insert(tables.tables["web_sessions"]).values(
                user_id=user, secret_hash=f"s-{active}", csrf_token="c", origin="o", created_at=now,
                last_seen_at=now, expires_at=now))  # fmt: skip
    migrate.upgrade(fresh, "0010")
    with fresh.connect() as conn:
        users, tokens, sessions = (tables.tables[n] for n in ("users", "api_tokens", "web_sessions"))
        revoked_tokens = dict(conn.execute(
            select(users.c.active, tokens.c.revoked_at.is_not(None)).join(tokens, tokens.c.user_id == users.c.id)
        ).all())  # fmt: skip
        ended_sessions = dict(conn.execute(
            select(users.c.active, sessions.c.revoked_at.is_not(None)).join(sessions, sessions.c.user_id == users.c.id)
        ).all())  # fmt: skip
    assert revoked_tokens == {True: False, False: True}
    assert ended_sessions == {True: False, False: True}
    assert inspect(fresh).get_pk_constraint("login_throttle")["constrained_columns"] == ["username", "origin"]
    migrate.downgrade(fresh, "0009")
    assert inspect(fresh).get_pk_constraint("login_throttle")["constrained_columns"] == ["username"]
