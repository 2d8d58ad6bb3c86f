"""A login flood neither fails requests, nor loses calls, nor slows the floor (issue 15 item 2, ADR 0018).

The app runs with a database of its own (it commits, and the call pipeline writes from its own threads): a SQLite
file, or a PostgreSQL database made for the test.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from conftest import PG_URL
from kakehashi.app import create_app
from kakehashi.auth import service as auth
from kakehashi.auth.limits import HashGate, LoginLimits, RateLimiter
from kakehashi.bench import login_flood
from kakehashi.calls import service as calls_service
from kakehashi.calls.models import Call
from kakehashi.calls.sink import CallEventSink
from kakehashi.kit import migrate
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work, utcnow
from kakehashi.kit.dbadmin import recreate_database
from kakehashi.kit.timers import VirtualClock
from kakehashi.telephony.drivers.sim.driver import SimDriver
from kakehashi.tenants import repository as tenants

T = TypeVar("T")


@pytest.fixture
def own_url(engine: Engine, tmp_path: Path) -> Iterator[str]:
    """An empty database of the test's own on the backend of this run."""
    if engine.dialect.name == "sqlite":
        yield f"sqlite:///{tmp_path / 'flood.db'}"
        return
    url = PG_URL + "_flood"
    recreate_database(url)
    yield url
    recreate_database(url, create=False)


@pytest.mark.slow
def test_a_login_flood_gives_no_500_loses_no_call_and_the_floor_reads_within_a_second(
    own_url: str, tmp_path: Path
) -> None:
    """40 anonymous clients post logins with random names for 20 s, each from its own loopback address (so the
    per-address limit does not simply stop them), while simulated customers call and a signed-in supervisor
    reads the wallboard every 100 ms."""
    result = login_flood.measure(
        own_url,
        tmp_path,
        threads=40,
        seconds=20.0,
        addresses=None,
        baseline_s=5.0,
        calls_per_hour=3600.0,
        short_calls_per_s=0.5,
        probe=login_flood.PROBE,
        probe_interval_s=0.1,
    )
    print(json.dumps(result))  # the figures, for docs/benchmarks.md
    codes = result["flood"]["codes"]
    assert set(codes) <= {"401", "429", "503"}, codes  # no 500, no connection refused or reset
    assert codes.get("401", 0) > 0  # the flood did reach the password check
    assert result["server_errors"] == 0, result["server_error_samples"]
    calls = result["calls"]
    assert calls["traffic_errors"] == 0
    assert calls["placed"] > 0 and calls["recorded"] == calls["placed"]  # no call lost
    assert calls["cdrs"] == calls["final"]  # every ended call has its CDR
    short = calls["short_calls"]
    assert short["failed"] == 0 and short["cdrs"] == short["placed"] > 0
    during = result["during_flood"]
    assert set(during["codes"]) == {"200"}
    # The target is 1 s. On a machine so busy that the reads come near it with no flood at all (CI runners are
    # shared), the bar is three times the baseline: what is tested is that the flood does not make them slow
    # (before issue 15: 7-15 s).
    limit = max(1000.0, 3 * result["baseline"]["p99_ms"])
    assert during["p99_ms"] <= limit, (during, result["baseline"])


class WatchedGate(HashGate):
    """Records how many database connections are checked out while a password is hashed."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(2, max_wait_s=5)
        self.engine = engine
        self.seen: list[int] = []

    async def in_thread(self, fn: Callable[[], T]) -> T:
        self.seen.append(self.engine.pool.checkedout())
        return await super().in_thread(fn)


def test_no_database_connection_is_held_while_a_password_is_hashed(own_url: str, tmp_path: Path) -> None:
    """On SQLite a transaction holds the process's one writer lock; on PostgreSQL a pooled connection: neither
    may wait for an argon2 hash. Both doors, a right and a wrong password."""
    db = make_engine(own_url)
    migrate.upgrade(db)
    with unit_of_work(make_session_factory(db)) as s:
        home = tenants.ensure(s, "center")
        auth.create_user(s, username="flood.op", password="flood-test-passphrase", role=Role.OPERATOR,
                         tenant_id=home.id)  # fmt: skip
    db.dispose()
    app = create_app(Settings(data_dir=tmp_path, database_url=own_url, default_tenant="center",
                              telephony_driver="none"))  # fmt: skip
    with TestClient(app) as c:
        gate = WatchedGate(app.state.session_factory.kw["bind"])
        app.state.login_limits = LoginLimits(RateLimiter(0), RateLimiter(0), gate)
        for password, code in (("flood-test-passphrase", 201), ("wrong-passphrase", 401)):
            r = c.post("/api/v1/auth/token", json={"username": "flood.op", "password": password})
            assert r.status_code == code
            page = c.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token
            form = {"username": "flood.op", "password": password, "csrf_token": token.group(1)}
            assert c.post("/login", data=form, follow_redirects=False).status_code in (303, 401)
    assert gate.seen == [0, 0, 0, 0]


def test_calls_are_recorded_while_web_requests_hold_every_pooled_connection(own_url: str, tmp_path: Path) -> None:
    """The call pipeline's connections are its own (PostgreSQL): web traffic that takes the whole web pool
    cannot make a call event wait for one, time out and be lost. On SQLite the engine is shared on purpose (one
    writer lock per process; web requests hold it only briefly)."""
    db = make_engine(own_url)
    migrate.upgrade(db)
    with unit_of_work(make_session_factory(db)) as s:
        tenant_id = tenants.ensure(s, "center").id
    app = create_app(Settings(data_dir=tmp_path, database_url=own_url, default_tenant="center"))
    try:
        with TestClient(app):
            web = app.state.session_factory.kw["bind"]
            if web.dialect.name == "sqlite":
                assert app.state.calls_engine is None
                return
            assert app.state.calls_engine is not None and app.state.calls_engine is not web
            held = [web.connect() for _ in range(web.pool.size() + web.pool._max_overflow)]  # the web pool, all of it
            try:
                driver = app.state.telephony.driver
                placed: list[str] = []
                driver.clock.call_later(0, lambda: placed.append(
                    driver.incoming(ani="090-1234-0000", dnis="0120-000-999", tenant_id=tenant_id)))  # fmt: skip
                deadline = time.monotonic() + 20  # well under the web pool's 30-s time-out
                recorded = 0
                while time.monotonic() < deadline and not recorded:
                    with db.connect() as conn:
                        recorded = conn.scalar(select(func.count()).select_from(Call)) or 0
                    time.sleep(0.1)  # polling the database from outside the app
                assert recorded == 1 and len(placed) == 1
            finally:
                for conn in held:
                    conn.close()
    finally:
        db.dispose()


def test_a_call_event_that_meets_a_busy_database_is_stored_on_a_later_try(
    session_factory: sessionmaker[Session], session: Session, actor: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock that stayed taken or a pool that stayed empty fails the event's transaction whole: the sink applies
    the event again instead of dropping the call (the failures are injected; the pauses shortened)."""
    monkeypatch.setattr(CallEventSink, "RETRY_PAUSES_S", (0.01, 0.01, 0.01))
    real = calls_service.apply_event
    busy: list[Exception] = [
        OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked")),
        PoolTimeout("QueuePool limit of size 10 overflow 20 reached, connection timed out"),
    ]

    def busy_first(*args: object, **kwargs: object) -> object:
        if busy:
            raise busy.pop(0)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(calls_service, "apply_event", busy_first)
    sim = SimDriver(VirtualClock(utcnow()))
    CallEventSink.attach(sim, session_factory)
    ref = sim.incoming(ani="090-1111-2222", dnis="0120-000-999", tenant_id=actor.tenant_id)
    assert not busy
    assert session.scalars(select(Call).where(Call.ref == ref)).one().direction == "inbound"
