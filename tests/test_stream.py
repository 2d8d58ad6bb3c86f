"""The live event WebSocket: authenticated, filtered by tenant and role; the screen pop rides on ringing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from starlette.websockets import WebSocketDisconnect

from conftest import ClientAs
from kakehashi.audit.models import AuditEvent
from kakehashi.calls.sink import CallEventSink
from kakehashi.kit.context import Role
from kakehashi.telephony.drivers.sim.driver import SimDriver

CENTER = "0120-444-444"


def bearer(c: TestClient) -> dict[str, str]:
    return {"Authorization": c.headers["Authorization"]}


def next_event(ws: Any) -> dict[str, Any]:
    message: dict[str, Any] = ws.receive_json()
    assert message["type"] == "event"
    return message


@pytest.fixture
def sim(session_factory: sessionmaker[Session]) -> SimDriver:
    driver = SimDriver()
    CallEventSink.attach(driver, session_factory)
    return driver


def test_the_agent_gets_the_screen_pop_others_get_what_their_role_allows(
    client_as: ClientAs, sim: SimDriver, session: Session
) -> None:
    sato = client_as(Role.OPERATOR, username="sato")
    suzuki = client_as(Role.OPERATOR, username="suzuki")
    supervisor = client_as(Role.SUPERVISOR)
    other_tenant = client_as(Role.SUPERVISOR, "tenant-b")
    tenant_b = other_tenant.user.tenant_id  # type: ignore[attr-defined]
    center = sato.user.tenant_id  # type: ignore[attr-defined]
    cid = supervisor.post(
        "/api/v1/customers", json={"name": "山田 花子", "phones": [{"number": "03-1234-5678"}], "street": "1-1"}
    ).json()["id"]
    with (
        sato.websocket_connect("/api/v1/events", headers=bearer(sato)) as ws_sato,
        suzuki.websocket_connect("/api/v1/events", headers=bearer(suzuki)) as ws_suzuki,
        supervisor.websocket_connect("/api/v1/events", headers=bearer(supervisor)) as ws_sv,
        other_tenant.websocket_connect("/api/v1/events", headers=bearer(other_tenant)) as ws_b,
    ):
        for ws, user in ((ws_sato, "sato"), (ws_suzuki, "suzuki")):
            assert ws.receive_json() == {"type": "hello", "user": user, "role": "operator", "tenant_id": center}
        ws_sv.receive_json(), ws_b.receive_json()

        ref = sim.incoming(ani="+81-3-1234-5678", dnis=CENTER, tenant_id=center)
        sim.set_agent("sato", answer_after=5)
        sim.route_to_agent(ref, "sato")
        ringing = next_event(ws_sato)  # the operator's first event: the offer had no agent yet
        assert ringing["name"] == "agent.ringing" and ringing["payload"]["agent"] == "sato"
        pop = ringing["screen_pop"]
        assert pop["known"] is True and pop["customer"]["id"] == cid and pop["customer"]["street"] == "1-1"
        assert [next_event(ws_sv)["name"] for _ in range(2)] == ["call.offered", "agent.ringing"]

        theirs = sim.incoming(ani="06-6000-7777", dnis=CENTER, tenant_id=center)
        sim.route_to_agent(theirs, "suzuki")
        first = next_event(ws_suzuki)  # nothing of sato's call came before
        assert first["name"] == "agent.ringing" and first["payload"]["agent"] == "suzuki"
        assert first["screen_pop"]["known"] is False

        sim.incoming(ani="06-6000-7777", dnis=CENTER, tenant_id=tenant_b)
        got = next_event(ws_b)  # tenant B saw nothing of the center's calls
        assert got["name"] == "call.offered" and got["payload"]["dnis"] == CENTER
    reads = session.query(AuditEvent).filter_by(username="sato", resource="screenpop", customer_id=cid).count()
    assert reads == 1  # the pop on the phone is an audited read by that agent


def test_anonymous_and_client_viewers_are_refused(app_client: TestClient, client_as: ClientAs) -> None:
    with pytest.raises(WebSocketDisconnect) as anonymous, app_client.websocket_connect("/api/v1/events"):
        pass
    assert anonymous.value.code == 4401
    viewer = client_as(Role.CLIENT_VIEWER)
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        viewer.websocket_connect("/api/v1/events", headers=bearer(viewer)),
    ):
        pass
    assert refused.value.code == 4403


def test_a_cookie_login_from_another_site_cannot_open_the_stream(app_client: TestClient, make_user: Any) -> None:
    """Browsers attach cookies to cross-site WebSocket handshakes: the Origin check stops hijacking."""
    from test_security_login import web_login

    web_login(app_client, make_user(Role.OPERATOR).username)
    with app_client.websocket_connect("/api/v1/events", headers={"Origin": "http://testserver"}) as ws:
        assert ws.receive_json()["type"] == "hello"
    with (
        pytest.raises(WebSocketDisconnect) as hijack,
        app_client.websocket_connect("/api/v1/events", headers={"Origin": "https://evil.example"}),
    ):
        pass
    assert hijack.value.code == 4403


def test_a_reconnecting_client_gets_what_it_missed_exactly_once(client_as: ClientAs, sim: SimDriver) -> None:
    supervisor = client_as(Role.SUPERVISOR)
    tenant = supervisor.user.tenant_id  # type: ignore[attr-defined]
    with supervisor.websocket_connect("/api/v1/events", headers=bearer(supervisor)) as ws:
        ws.receive_json()
        sim.incoming(ani="03-1111-0001", dnis=CENTER, tenant_id=tenant)
        seen = next_event(ws)
    missed = [sim.incoming(ani=f"03-1111-000{i}", dnis=CENTER, tenant_id=tenant) for i in (2, 3)]
    url = f"/api/v1/events?last_event_id={seen['id']}"
    with supervisor.websocket_connect(url, headers=bearer(supervisor)) as ws:
        assert ws.receive_json()["type"] == "hello"
        replayed = [next_event(ws), next_event(ws)]
        assert [e["payload"]["call_ref"] for e in replayed] == missed
        assert replayed[0]["id"] > seen["id"] and replayed[1]["id"] > replayed[0]["id"]
        live = sim.incoming(ani="03-1111-0004", dnis=CENTER, tenant_id=tenant)
        assert next_event(ws)["payload"]["call_ref"] == live  # then live, nothing twice


def test_a_client_too_far_behind_is_told_to_resync(client_as: ClientAs, sim: SimDriver) -> None:
    supervisor = client_as(Role.SUPERVISOR)
    sim.incoming(ani="03-1111-0001", dnis=CENTER, tenant_id=supervisor.user.tenant_id)  # type: ignore[attr-defined]
    with supervisor.websocket_connect("/api/v1/events?last_event_id=1", headers=bearer(supervisor)) as ws:
        assert ws.receive_json()["type"] == "hello"
        assert ws.receive_json() == {"type": "resync"}


def test_queue_figures_reach_supervisors_and_operators_live(client_as: ClientAs) -> None:
    admin = client_as(Role.ADMIN)
    operator = client_as(Role.OPERATOR, username="kato")
    admin.post("/api/v1/queues", json={"name": "orders"})
    admin.post("/api/v1/inbound-numbers", json={"number": "0120-777-777", "queue": "orders"})
    driver = admin.app.state.telephony.driver  # type: ignore[attr-defined]
    with operator.websocket_connect("/api/v1/events", headers=bearer(operator)) as ws:
        ws.receive_json()
        driver.incoming(ani="03-1111-0009", dnis="0120-777-777")  # the number's owner is looked up; it waits
        event = next_event(ws)
        while event["name"] != "queue.stats":  # an operator sees no other call than their own
            event = next_event(ws)
        assert event["payload"]["queue"] == "orders" and event["payload"]["waiting"] == 1
