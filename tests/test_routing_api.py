"""Routing configuration over HTTP: queues, members, inbound numbers; callback and voicemail lists."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from conftest import ClientAs
from kakehashi.audit.models import AuditEvent
from kakehashi.kit.context import Role
from kakehashi.kit.db import utcnow
from kakehashi.routing.models import Callback, Voicemail

HANGUP = {"start": "bye", "nodes": {"bye": {"type": "hangup"}}}


@pytest.fixture
def orders(client: TestClient) -> dict[str, Any]:
    for name in ("sato", "suzuki"):
        client.post("/api/v1/agents", json={"name": name, "display_name": name})
    escalation = [{"after_s": 30, "max_level": 2}]
    r = client.post("/api/v1/queues", json={"name": "orders", "label": "注文受付", "escalation": escalation})
    assert r.status_code == 201, r.text
    return r.json()


def test_a_queue_gets_defaults_and_changes_only_what_is_sent(client: TestClient, orders: dict[str, Any]) -> None:
    assert (orders["strategy"], orders["wrap_up_s"], orders["ring_timeout_s"], orders["sl_threshold_s"]) == (
        "longest_idle", 30, 15, 20)  # fmt: skip
    assert orders["escalation"] == [{"after_s": 30, "max_level": 2}]
    url = f"/api/v1/queues/{orders['id']}"
    changed = client.patch(url, json={"strategy": "round_robin", "max_wait_s": 120, "overflow_action": "voicemail"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["strategy"], changed.json()["label"]) == ("round_robin", "注文受付")
    cleared = client.patch(url, json={"max_wait_s": None, "overflow_action": "none"}).json()
    assert cleared["max_wait_s"] is None
    assert (cleared["sl_target_pct"], cleared["wait_alert_s"]) == (80, None)
    targets = client.patch(url, json={"sl_target_pct": 90, "wait_alert_s": 45}).json()
    assert (targets["sl_target_pct"], targets["wait_alert_s"]) == (90, 45)
    assert client.patch(url, json={"wait_alert_s": None}).json()["wait_alert_s"] is None
    assert client.post("/api/v1/queues", json={"name": "orders"}).status_code == 409
    assert [q["name"] for q in client.get("/api/v1/queues").json()] == ["orders"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"overflow_action": "queue", "max_wait_s": 60}, "overflow_queue"),
        ({"overflow_action": "queue", "overflow_queue": "nowhere", "max_wait_s": 60}, "overflow_queue"),
        ({"overflow_action": "queue", "overflow_queue": "orders", "max_wait_s": 60}, "overflow_queue"),
        ({"overflow_action": "callback"}, "overflow_action"),
        ({"strategy": "random"}, "strategy"),
        ({"ring_timeout_s": 1}, "ring_timeout_s"),
        ({"sl_target_pct": 0}, "sl_target_pct"),
        ({"sl_target_pct": 101}, "sl_target_pct"),
        ({"escalation": [{"after_s": 30, "max_level": 12}]}, "escalation.0.max_level"),
    ],
)
def test_invalid_queue_settings_are_refused_with_the_field(
    client: TestClient, orders: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    r = client.patch(f"/api/v1/queues/{orders['id']}", json=change)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in r.json()["errors"]]
    assert client.get(f"/api/v1/queues/{orders['id']}").json()["strategy"] == "longest_idle"


def test_members_are_replaced_and_the_running_acd_follows(
    client: TestClient, client_as: ClientAs, orders: dict[str, Any]
) -> None:
    supervisor = client_as(Role.SUPERVISOR)
    url = f"/api/v1/queues/{orders['id']}/members"
    r = supervisor.put(url, json={"members": {"sato": 1, "suzuki": 2}})
    assert r.status_code == 200 and r.json()["members"] == {"sato": 1, "suzuki": 2}
    assert supervisor.put(url, json={"members": {"nobody": 1}}).status_code == 404
    assert supervisor.get(url).json()["members"] == {"sato": 1, "suzuki": 2}  # the refused change left nothing
    supervisor.put(url, json={"members": {"suzuki": 1}})
    engine = client.app.state.telephony.controller.engine(client.app.state.default_tenant_id)  # type: ignore[attr-defined]
    assert engine.agent("suzuki").queues == {"orders": 1} and engine.agent("sato").queues == {}


def test_numbers_route_to_a_flow_or_a_queue_that_exists(client: TestClient, orders: dict[str, Any]) -> None:
    client.post("/api/v1/ivr/flows", json={"name": "main", "definition": HANGUP})
    r = client.post(
        "/api/v1/inbound-numbers", json={"number": "０１２０（４４４）４４４", "flow": "main", "label": "TV"}
    )
    assert r.status_code == 201, r.text
    number = r.json()
    assert number["number_e164"] == "+81120444444"
    assert client.post("/api/v1/inbound-numbers", json={"number": "0120-444-444", "queue": "orders"}).status_code == 409
    missing = client.post("/api/v1/inbound-numbers", json={"number": "0120-555-555", "flow": "nope", "queue": "nah"})
    assert missing.status_code == 422 and {e["field"] for e in missing.json()["errors"]} == {"flow", "queue"}
    nothing = client.post("/api/v1/inbound-numbers", json={"number": "0120-555-555"})
    assert nothing.status_code == 422
    bad = client.post("/api/v1/inbound-numbers", json={"number": "12", "queue": "orders"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "number"

    url = f"/api/v1/inbound-numbers/{number['id']}"
    moved = client.patch(url, json={"flow": None, "queue": "orders"}).json()
    assert (moved["flow"], moved["queue"], moved["label"]) == (None, "orders", "TV")
    assert client.patch(url, json={"queue": None}).status_code == 422
    assert client.delete(url).status_code == 204
    assert client.get("/api/v1/inbound-numbers").json() == []


def test_callbacks_and_voicemails_are_listed_waiting_first_and_audited(
    client: TestClient, client_as: ClientAs, session: Session, orders: dict[str, Any]
) -> None:
    tenant = client.app.state.default_tenant_id  # type: ignore[attr-defined]
    now = utcnow()
    for ref, status in (("c1", "done"), ("c2", "pending"), ("c3", "failed")):
        session.add(Callback(tenant_id=tenant, queue="orders", number_e164="+819011112222", origin_call_ref=ref,
                             priority=0, place_at=now, requested_at=now, status=status))  # fmt: skip
    session.add(Voicemail(tenant_id=tenant, queue="orders", number_e164="+819033334444", call_ref="v1", left_at=now))
    session.flush()
    supervisor = client_as(Role.SUPERVISOR)
    callbacks = supervisor.get("/api/v1/callbacks").json()
    assert callbacks[0]["origin_call_ref"] == "c2" and callbacks[0]["number_e164"] == "+819011112222"
    assert [c["origin_call_ref"] for c in supervisor.get("/api/v1/callbacks?status=failed").json()] == ["c3"]
    mails = supervisor.get("/api/v1/voicemails?status=new").json()
    assert [m["call_ref"] for m in mails] == ["v1"]
    done = supervisor.patch(f"/api/v1/voicemails/{mails[0]['id']}", json={"status": "done"})
    assert done.json()["status"] == "done"
    assert supervisor.get("/api/v1/voicemails?status=new").json() == []
    reads = session.scalars(select(AuditEvent.resource).where(AuditEvent.action == "read")).all()
    assert {"callbacks", "voicemails"} <= set(reads)
    assert client_as(Role.CLIENT_VIEWER).get("/api/v1/callbacks").status_code == 403


def test_another_tenants_routing_is_not_found(client: TestClient, client_as: ClientAs, orders: dict[str, Any]) -> None:
    other = client_as(Role.ADMIN, "client-b")
    assert other.get("/api/v1/queues").json() == []
    assert other.get(f"/api/v1/queues/{orders['id']}").status_code == 404
    assert other.patch(f"/api/v1/queues/{orders['id']}", json={"label": "x"}).status_code == 404
    assert other.put(f"/api/v1/queues/{orders['id']}/members", json={"members": {}}).status_code == 404
    # B's own queue may use the same name: names are unique per tenant.
    assert other.post("/api/v1/queues", json={"name": "orders"}).status_code == 201


def test_a_pending_callback_whose_queue_is_gone_fails_at_start_instead_of_stopping_the_app(
    client_as: ClientAs, session: Session
) -> None:
    from kakehashi.tenants import repository as tenants

    tenant = tenants.get_or_create(session, "center", "center").id
    now = utcnow()
    session.add(Callback(tenant_id=tenant, queue="deleted", number_e164="+819011112222", origin_call_ref="old",
                         priority=0, place_at=now, requested_at=now))  # fmt: skip
    session.flush()
    supervisor = client_as(Role.SUPERVISOR)  # the app starts here
    [row] = supervisor.get("/api/v1/callbacks").json()
    assert (row["origin_call_ref"], row["status"]) == ("old", "failed") and row["done_at"] is not None


def test_another_tenants_voicemail_is_not_found(client_as: ClientAs, session: Session) -> None:
    from kakehashi.tenants import repository as tenants

    tenant = tenants.get_or_create(session, "center", "center").id
    mail = Voicemail(tenant_id=tenant, queue="orders", number_e164="+819033334444", call_ref="v1", left_at=utcnow())
    session.add(mail)
    session.flush()
    other = client_as(Role.ADMIN, "client-b")
    r = other.patch(f"/api/v1/voicemails/{mail.id}", json={"status": "done"})
    assert r.status_code == 404 and "3333" not in r.text
    assert other.get("/api/v1/voicemails").json() == [] and other.get("/api/v1/callbacks").json() == []
    session.refresh(mail)
    assert mail.status == "new"


def test_an_ivr_set_may_name_a_skill_only_a_queue_takes(client: TestClient) -> None:
    skill_flow = {
        "start": "s",
        "nodes": {"s": {"type": "set", "skill": "english", "next": "q"}, "q": {"type": "queue"}},
    }
    refused = client.post("/api/v1/ivr/flows", json={"name": "en", "definition": skill_flow})
    assert refused.status_code == 422 and "nodes.s.skill" in [e["field"] for e in refused.json()["errors"]]
    client.post("/api/v1/queues", json={"name": "english-desk", "skill": "english"})
    assert client.post("/api/v1/ivr/flows", json={"name": "en", "definition": skill_flow}).status_code == 201
    engine = client.app.state.telephony.controller  # type: ignore[attr-defined]
    tenant = client.app.state.default_tenant_id  # type: ignore[attr-defined]
    setup = engine.directory.setup(tenant)
    assert setup.skill_queues == (("english", "english-desk"),)
