"""Test fixtures: every database test runs on SQLite *and* PostgreSQL.

The schema is built by running the Alembic migrations (so migrations are tested too); each
test runs inside a transaction that is rolled back at the end.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.app import create_app
from kakehashi.auth import service as auth
from kakehashi.auth.models import User
from kakehashi.auth.passwords import hash_password
from kakehashi.kit import migrate
from kakehashi.kit.config import Settings, get_settings
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import make_engine
from kakehashi.kit.dbadmin import recreate_database
from kakehashi.tenants import service as tenants

BACKENDS = [b.strip() for b in os.environ.get("KAKEHASHI_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
# One database per test run, so two runs on one machine never drop each other's schema.
if TYPE_CHECKING:
    from playwright.sync_api import Browser

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


@pytest.fixture(params=BACKENDS)
def cli_database(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated database of its own (a file, or a PostgreSQL database named after the test module) that the
    CLI opens through ``KAKEHASHI_DATABASE_URL``: the CLI commits, which the shared-connection fixtures roll back."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cli.db'}"
    else:
        module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
        url = PG_URL.rsplit("/", 1)[0] + f"/kakehashi_cli_{module}_{os.getpid()}"
        recreate_database(url)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("KAKEHASHI_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()
    if request.param == "postgresql":
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


TEST_PASSWORD = "kakehashi-test-passphrase"
_serial = itertools.count(1)


@pytest.fixture(scope="session")
def password_hash() -> str:
    """Hashed once: argon2 is slow on purpose, and hundreds of test users need no fresh hash each."""
    return hash_password(TEST_PASSWORD)


MakeUser = Callable[..., User]


@pytest.fixture
def make_user(session: Session, password_hash: str) -> MakeUser:
    """``make_user(Role.OPERATOR, "client-b")`` → a user in that tenant (created if needed), password
    ``TEST_PASSWORD``; ``center_wide=True`` for a center-wide admin."""

    def make(role: Role, tenant: str = "center", *, username: str | None = None, center_wide: bool = False) -> User:
        home = tenants.get_or_create(session, tenant, tenant)
        user = User(
            username=username or f"{role.value.replace('_', '-')}-{tenant}-{next(_serial)}",
            display_name=f"{role.value} of {tenant}",
            role=role.value,
            tenant_id=None if center_wide else home.id,
            password_hash=password_hash,
            active=True,
        )
        session.add(user)
        session.flush()
        return user

    return make


@pytest.fixture
def app_client(settings: Settings, session_factory: sessionmaker[Session]) -> Iterator[TestClient]:
    """An anonymous client."""
    app = create_app(settings, session_factory=session_factory)
    with TestClient(app) as c:
        yield c


ClientAs = Callable[..., TestClient]


@pytest.fixture
def client_as(
    settings: Settings, session_factory: sessionmaker[Session], session: Session, make_user: MakeUser
) -> Iterator[ClientAs]:
    """``client_as(Role.SUPERVISOR, "client-b")`` → a client sending that user's bearer token."""
    opened: list[TestClient] = []
    app = create_app(settings, session_factory=session_factory)

    def login(role: Role, tenant: str = "center", **kw: object) -> TestClient:
        user = make_user(role, tenant, **kw)
        secret, _ = auth.issue_token(session, user, "test")
        session.flush()
        c = TestClient(app)
        c.__enter__()
        c.headers["Authorization"] = f"Bearer {secret}"
        c.user = user  # type: ignore[attr-defined]
        opened.append(c)
        return c

    yield login
    for c in opened:
        c.__exit__(None, None, None)


@pytest.fixture
def client(client_as: ClientAs) -> TestClient:
    """A client logged in as an admin of the center tenant (may call every route)."""
    return client_as(Role.ADMIN)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium for the browser tests (tests/web_server.py); a module may define its own."""
    from web_server import chromium

    with chromium() as launched:
        yield launched
