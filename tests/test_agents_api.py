"""Agents over HTTP: admins create them, supervisors and the agents themselves choose states, every state
is kept as a span; with telephony running the call controller decides, without it the agents domain does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from conftest import ClientAs, MakeUser
from kakehashi.app import create_app
from kakehashi.auth import service as auth
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Role
from kakehashi.routing.engine import AgentState


@pytest.fixture
def sato(client: TestClient) -> dict[str, Any]:
    client.post("/api/v1/aux-codes", json={"code": "lunch", "label": "昼休憩"})
    r = client.post("/api/v1/agents", json={"name": "sato", "display_name": "佐藤 花子", "skills": {"order": 1}})
    assert r.status_code == 201, r.text
    return r.json()


def test_an_admin_creates_an_agent_logged_out_with_skills(client: TestClient, sato: dict[str, Any]) -> None:
    assert sato["state"] == "logged_out" and sato["skills"] == {"order": 1}
    again = client.post("/api/v1/agents", json={"name": "sato", "display_name": "別人"})
    assert again.status_code == 409
    bad = client.post("/api/v1/agents", json={"name": "x", "display_name": "X", "skills": {"order": 10}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "skills.order"
    listed = client.get("/api/v1/agents").json()
    assert [(a["name"], a["skills"]) for a in listed] == [("sato", {"order": 1})]


def test_skills_are_replaced_and_skill_queues_follow(client: TestClient, sato: dict[str, Any]) -> None:
    queue = client.post("/api/v1/queues", json={"name": "english", "skill": "english"}).json()
    assert client.get(f"/api/v1/queues/{queue['id']}/members").json()["members"] == {}
    updated = client.patch(f"/api/v1/agents/{sato['id']}", json={"skills": {"english": 2}}).json()
    assert updated["skills"] == {"english": 2} and updated["display_name"] == "佐藤 花子"
    app = client.app
    engine = app.state.telephony.controller.engine(sato_tenant(client))  # type: ignore[attr-defined]
    assert engine.agent("sato").queues == {"english": 2}


def sato_tenant(client: TestClient) -> int:
    return int(client.app.state.default_tenant_id)  # type: ignore[attr-defined]


def test_a_supervisor_sets_states_and_the_controller_follows(
    client: TestClient, client_as: ClientAs, sato: dict[str, Any]
) -> None:
    supervisor = client_as(Role.SUPERVISOR)
    url = f"/api/v1/agents/{sato['id']}/state"
    r = supervisor.post(url, json={"state": "available"})
    assert r.status_code == 200 and r.json()["state"] == "available"
    controller = client.app.state.telephony.controller  # type: ignore[attr-defined]
    assert controller.engine(sato_tenant(client)).agent("sato").state is AgentState.AVAILABLE

    no_reason = supervisor.post(url, json={"state": "break"})
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
    unknown = supervisor.post(url, json={"state": "break", "reason": "nap"})
    assert unknown.status_code == 422
    on_break = supervisor.post(url, json={"state": "break", "reason": "lunch"}).json()
    assert (on_break["state"], on_break["state_reason"]) == ("break", "lunch")
    not_choosable = supervisor.post(url, json={"state": "on_call"})
    assert not_choosable.status_code == 422

    spans = supervisor.get(f"/api/v1/agents/{sato['id']}/history").json()
    assert [(s["state"], s["reason"]) for s in spans][:2] == [("break", "lunch"), ("available", None)]
    assert spans[0]["ended_at"] is None and spans[1]["ended_at"] is not None


def test_an_operator_sets_their_own_state_only(
    client: TestClient, client_as: ClientAs, sato: dict[str, Any], make_user: MakeUser
) -> None:
    own = client_as(Role.OPERATOR, username="sato")
    assert own.get("/api/v1/agents/me").json()["id"] == sato["id"]
    r = own.post("/api/v1/agents/me/state", json={"state": "available"})
    assert r.status_code == 200 and r.json()["state"] == "available"
    assert own.post(f"/api/v1/agents/{sato['id']}/state", json={"state": "logged_out"}).status_code == 403
    assert own.get("/api/v1/aux-codes").json() == [{"code": "lunch", "label": "昼休憩"}]
    stranger = client_as(Role.OPERATOR)
    missing = stranger.post("/api/v1/agents/me/state", json={"state": "available"})
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_another_tenants_agent_is_not_found(client_as: ClientAs, sato: dict[str, Any]) -> None:
    other = client_as(Role.ADMIN, "client-b")
    for method, path, body in [
        ("GET", f"/api/v1/agents/{sato['id']}", None),
        ("PATCH", f"/api/v1/agents/{sato['id']}", {"display_name": "乗っ取り"}),
        ("POST", f"/api/v1/agents/{sato['id']}/state", {"state": "available"}),
        ("GET", f"/api/v1/agents/{sato['id']}/history", None),
    ]:
        r = other.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.status_code)
        assert "佐藤" not in r.text
    assert other.get("/api/v1/agents").json() == []


@pytest.fixture
def without_telephony(
    tmp_path: Any, session_factory: sessionmaker[Session], session: Session, make_user: MakeUser
) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, database_url="sqlite://", default_tenant="center", telephony_driver="none")
    app = create_app(settings, session_factory=session_factory)
    secret, _ = auth.issue_token(session, make_user(Role.ADMIN), "test")
    session.flush()
    with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as c:
        yield c


def test_without_telephony_states_are_recorded_by_the_agents_domain(without_telephony: TestClient) -> None:
    c = without_telephony
    agent = c.post("/api/v1/agents", json={"name": "kato", "display_name": "加藤"}).json()
    r = c.post(f"/api/v1/agents/{agent['id']}/state", json={"state": "available"})
    assert r.status_code == 200 and r.json()["state"] == "available"
    assert c.get(f"/api/v1/agents/{agent['id']}").json()["state"] == "available"
    assert [s["state"] for s in c.get(f"/api/v1/agents/{agent['id']}/history").json()] == ["available"]
