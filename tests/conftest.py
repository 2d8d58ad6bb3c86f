"""Test fixtures: every database test runs on SQLite *and* PostgreSQL.

The schema is built by running the Alembic migrations (so migrations are tested too); each
test runs inside a transaction that is rolled back at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.app import create_app
from kakehashi.kit import migrate
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Actor
from kakehashi.kit.db import make_engine
from kakehashi.kit.dbadmin import recreate_database
from kakehashi.tenants import repository as tenants

BACKENDS = [b.strip() for b in os.environ.get("KAKEHASHI_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
# One database per test run, so two runs on one machine never drop each other's schema.
PG_URL = os.environ.get(
    "KAKEHASHI_TEST_PG_URL", f"postgresql+psycopg://postgres@127.0.0.1:5432/kakehashi_test_{os.getpid()}"
)


@pytest.fixture(scope="session", params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    backend = request.param
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    elif backend == "postgresql":
        url = PG_URL
        recreate_database(url)
    else:
        raise ValueError(f"unknown backend {backend}")
    eng = make_engine(url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()
    if backend == "postgresql":
        recreate_database(url, create=False)


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    """Sessions whose commit only releases a savepoint: the test's transaction is rolled back."""
    return sessionmaker(
        bind=connection, expire_on_commit=False, autoflush=False, join_transaction_mode="create_savepoint"
    )


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    s = session_factory()
    yield s
    s.close()


@pytest.fixture
def actor(session: Session) -> Actor:
    tenant = tenants.get_or_create(session, "center", "コールセンター")
    return Actor(tenant_id=tenant.id, username="tester")


@pytest.fixture
def other_actor(session: Session) -> Actor:
    tenant = tenants.get_or_create(session, "client-b", "委託元B")
    return Actor(tenant_id=tenant.id, username="other")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url="sqlite://", default_tenant="center")


@pytest.fixture
def client(settings: Settings, session_factory: sessionmaker[Session]) -> Iterator[TestClient]:
    app = create_app(settings, session_factory=session_factory)
    with TestClient(app) as c:
        yield c
