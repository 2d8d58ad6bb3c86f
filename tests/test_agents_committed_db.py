"""Agent states through the app on a database of its own (real commits, one writer on SQLite): the call
controller records states in its own transactions, so the request must not hold the write lock meanwhile."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kakehashi.app import create_app
from kakehashi.auth import service as auth
from kakehashi.auth.models import User
from kakehashi.auth.passwords import hash_password
from kakehashi.kit import migrate
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Role
from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work
from kakehashi.tenants import repository as tenants


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[TestClient]:
    engine = make_engine(f"sqlite:///{tmp_path / 'app.db'}")
    migrate.upgrade(engine)
    with unit_of_work(make_session_factory(engine)) as s:
        center = tenants.get_or_create(s, "center", "コールセンター")
        user = User(username="boss", display_name="boss", role=Role.ADMIN.value, tenant_id=center.id,
                    password_hash=hash_password("committed-db-passphrase"), active=True)  # fmt: skip
        s.add(user)
        s.flush()
        secret, _ = auth.issue_token(s, user, "test")
    settings = Settings(data_dir=tmp_path, database_url=str(engine.url), default_tenant="center")
    with TestClient(create_app(settings, engine=engine), headers={"Authorization": f"Bearer {secret}"}) as client:
        yield client
    engine.dispose()


def test_a_break_with_a_reason_is_recorded_without_waiting_for_the_database_lock(admin: TestClient) -> None:
    admin.post("/api/v1/aux-codes", json={"code": "lunch", "label": "昼休憩"})
    agent = admin.post("/api/v1/agents", json={"name": "sato", "display_name": "佐藤"}).json()
    url = f"/api/v1/agents/{agent['id']}/state"
    assert admin.post(url, json={"state": "available"}).json()["state"] == "available"
    started = time.monotonic()
    r = admin.post(url, json={"state": "break", "reason": "lunch"})
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["state_reason"]) == ("break", "lunch")
    assert time.monotonic() - started < 2  # not a busy-timeout wait
    spans = admin.get(f"/api/v1/agents/{agent['id']}/history").json()
    assert [(s["state"], s["reason"]) for s in spans[:2]] == [("break", "lunch"), ("available", None)]
