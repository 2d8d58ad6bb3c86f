"""Cross-tenant adversarial suite: a user of tenant A uses tenant B's ids everywhere.

Always 404 (or an empty result), never B's data, and every refused attempt is in A's audit log,
flagged ``cross_tenant`` when the id belongs to another tenant.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from conftest import ClientAs
from kakehashi.audit.models import AuditEvent
from kakehashi.kit.context import Role

B_NAME = "秘密 花子"
B_KANA = "ヒミツ ハナコ"
B_PHONE = "06-6000-7777"


@pytest.fixture
def b_data(client_as: ClientAs) -> dict[str, Any]:
    """Tenant B's customer with an order, a complaint and a contact."""
    b = client_as(Role.ADMIN, "tenant-b")
    cid = b.post(
        "/api/v1/customers", json={"name": B_NAME, "name_kana": B_KANA, "phones": [{"number": B_PHONE}]}
    ).json()["id"]
    order = b.post(
        f"/api/v1/customers/{cid}/orders", json={"lines": [{"name": "青汁", "quantity": 1, "unit_price": 3000}]}
    ).json()
    complaint = b.post(f"/api/v1/customers/{cid}/complaints", json={"category": "品質", "text": "B社の苦情"}).json()
    b.post(f"/api/v1/customers/{cid}/contacts", json={"channel": "call", "summary": "B社の対応"})
    return {"customer_id": cid, "order_id": order["id"], "complaint_id": complaint["id"]}


@pytest.fixture
def a_admin(client_as: ClientAs) -> TestClient:
    return client_as(Role.ADMIN, "tenant-a")


def denied_rows(session: Session, username: str) -> list[AuditEvent]:
    return list(session.query(AuditEvent).filter(AuditEvent.username == username, AuditEvent.outcome == "denied").all())


def by_id_calls(ids: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]]:
    cid, comp = ids["customer_id"], ids["complaint_id"]
    line = {"lines": [{"name": "x", "quantity": 1, "unit_price": 1}]}
    return [
        ("GET", f"/api/v1/customers/{cid}", None, None),
        ("PATCH", f"/api/v1/customers/{cid}", None, {"notes": "A was here"}),
        ("GET", f"/api/v1/customers/{cid}/orders", None, None),
        ("POST", f"/api/v1/customers/{cid}/orders", None, line),
        ("GET", f"/api/v1/customers/{cid}/complaints", None, None),
        ("POST", f"/api/v1/customers/{cid}/complaints", None, {"category": "x", "text": "y"}),
        ("POST", f"/api/v1/complaints/{comp}/resolve", None, None),
        ("GET", f"/api/v1/customers/{cid}/contacts", None, None),
        ("POST", f"/api/v1/customers/{cid}/contacts", None, {"channel": "note", "summary": "x"}),
        ("GET", "/api/v1/screenpop", {"customer_id": cid}, None),
        ("POST", f"/api/v1/customers/{cid}/privacy/suspension", None, {"channel": "phone"}),
        ("GET", f"/api/v1/customers/{cid}/privacy/requests", None, None),
        ("POST", f"/api/v1/customers/{cid}/privacy/disclosure", None, None),
    ]


def test_given_b_ids_in_paths_and_queries_then_404_and_nothing_of_b(
    a_admin: TestClient, b_data: dict[str, Any], session: Session
) -> None:
    calls = by_id_calls(b_data)
    for method, path, params, body in calls:
        r = a_admin.request(method, path, params=params, json=body)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert B_NAME not in r.text and "B社" not in r.text
    rows = denied_rows(session, a_admin.user.username)  # type: ignore[attr-defined]
    assert len(rows) == len(calls)
    assert all(row.detail and row.detail.get("cross_tenant") is True for row in rows if row.resource == "customer")
    assert {row.tenant_id for row in rows} == {a_admin.user.tenant_id}  # type: ignore[attr-defined]


def test_given_b_data_then_a_search_suggest_and_screen_pop_find_nothing(
    a_admin: TestClient, b_data: dict[str, Any]
) -> None:
    assert a_admin.get("/api/v1/customers", params={"q": "秘密"}).json()["total"] == 0
    assert a_admin.get("/api/v1/customers").json()["items"] == []
    assert a_admin.get("/api/v1/customers/suggest", params={"q": "ひみつ"}).json() == []
    pop = a_admin.get("/api/v1/screenpop", params={"phone": B_PHONE}).json()
    assert pop["known"] is False and pop["customer"] is None  # same answer as any unknown number
    assert B_NAME not in str(pop)


def test_given_b_order_in_a_body_then_refused(a_admin: TestClient, b_data: dict[str, Any]) -> None:
    mine = a_admin.post("/api/v1/customers", json={"name": "A社 顧客"}).json()["id"]
    r = a_admin.post(
        f"/api/v1/customers/{mine}/complaints",
        json={"category": "返品", "text": "x", "kind": "return", "order_id": b_data["order_id"]},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "order_id"


def test_given_b_phone_then_a_can_register_the_same_number_separately(
    a_admin: TestClient, b_data: dict[str, Any]
) -> None:
    """Numbers are unique per tenant: B's customer does not block A, nor is revealed by a conflict."""
    r = a_admin.post("/api/v1/customers", json={"name": "A社の同番号", "phones": [{"number": B_PHONE}]})
    assert r.status_code == 201


def test_given_tenant_user_asks_for_another_tenant_by_header_then_403(
    a_admin: TestClient, b_data: dict[str, Any]
) -> None:
    r = a_admin.get(f"/api/v1/customers/{b_data['customer_id']}", headers={"X-Kakehashi-Tenant": "tenant-b"})
    assert r.status_code == 403


def test_given_center_wide_admin_then_the_tenant_header_picks_the_client(
    client_as: ClientAs, b_data: dict[str, Any]
) -> None:
    center = client_as(Role.ADMIN, center_wide=True)
    assert center.get(f"/api/v1/customers/{b_data['customer_id']}").status_code == 404
    r = center.get(f"/api/v1/customers/{b_data['customer_id']}", headers={"X-Kakehashi-Tenant": "tenant-b"})
    assert r.status_code == 200 and r.json()["name"] == B_NAME
    assert center.get("/api/v1/customers", headers={"X-Kakehashi-Tenant": "nope"}).status_code == 403


def test_b_users_and_audit_are_invisible_to_a(client_as: ClientAs, a_admin: TestClient, b_data: dict[str, Any]) -> None:
    b_admin = client_as(Role.ADMIN, "tenant-b")
    b_user_id = b_admin.user.id  # type: ignore[attr-defined]
    assert a_admin.patch(f"/api/v1/users/{b_user_id}", json={"active": False}).status_code == 404
    assert a_admin.get(f"/api/v1/users/{b_user_id}/tokens").status_code == 404
    b_token = b_admin.get("/api/v1/auth/tokens").json()[0]["id"]
    assert a_admin.delete(f"/api/v1/users/{b_user_id}/tokens/{b_token}").status_code == 404
    assert b_admin.get("/api/v1/auth/me").status_code == 200  # B's token still works
    assert all(u["tenant_id"] == a_admin.user.tenant_id for u in a_admin.get("/api/v1/users").json())  # type: ignore[attr-defined]
    log = a_admin.get("/api/v1/audit", params={"customer_id": b_data["customer_id"]}).json()
    assert log["total"] == 0
    assert a_admin.get("/api/v1/tenants").json() == [
        t for t in a_admin.get("/api/v1/tenants").json() if t["code"] == "tenant-a"
    ]
    assert a_admin.post("/api/v1/tenants", json={"code": "evil", "name": "x"}).status_code == 403


# Routes taking an id that are checked elsewhere or hold no other-tenant data.
NOT_CUSTOMER_DATA = {
    # Campaigns: tests/test_campaigns_api.py::test_given_another_tenants_campaign_dnc_and_refusal_when_called_then_404
    "/api/v1/campaigns/{campaign_id}",
    "/api/v1/campaigns/{campaign_id}/start",
    "/api/v1/campaigns/{campaign_id}/pause",
    "/api/v1/campaigns/{campaign_id}/stop",
    "/api/v1/campaigns/{campaign_id}/leads",
    "/api/v1/campaigns/{campaign_id}/leads/{lead_id}/outcome",
    "/api/v1/campaigns/{campaign_id}/reserve",
    "/api/v1/campaigns/dnc/{dnc_id}",
    "/api/v1/campaigns/refusals/{refusal_id}/lift",
    # Segments: tests/test_campaign_segments.py::test_segments_over_http_roles_and_tenancy (B reads and runs A's
    # segment → 404; counts are figures, never customers)
    "/api/v1/campaigns/segments/{segment_id}",
    "/api/v1/campaigns/segments/{segment_id}/count",
    "/api/v1/campaigns/segments/{segment_id}/run",
    # tests/test_campaign_compliance.py::test_release_stale_is_per_tenant_and_per_campaign (and its route test)
    "/api/v1/campaigns/{campaign_id}/release-stale",
    # Call lists: tests/test_campaign_lists.py::test_bad_uploads_are_problem_details_in_both_languages (B's upload
    # into A's campaign and B's read of its lists → 404) and ::test_a_list_loads_only_into_the_actors_tenant
    "/api/v1/campaigns/{campaign_id}/lists",
    "/api/v1/campaigns/{campaign_id}/lists/{list_id}",
    # Results: tests/test_campaign_results.py::test_another_tenants_campaign_is_404_on_every_route
    "/api/v1/campaigns/{campaign_id}/results",
    "/api/v1/campaigns/{campaign_id}/results.csv",
    "/api/v1/campaigns/{campaign_id}/results.xlsx",
    "/campaigns/{campaign_id}/results",
    "/api/v1/auth/tokens/{token_id}",  # your own tokens only: test_security_login.py
    "/api/v1/users/{user_id}",  # test_b_users_and_audit_are_invisible_to_a
    "/api/v1/users/{user_id}/tokens",  # the same test, and test_security_login.py::TestTokensDieWithThePassword
    "/api/v1/users/{user_id}/tokens/{token_id}",
    "/api/v1/tenants/{tenant_id}",  # center-wide admins only: test_security_routes.py
    "/api/v1/custom-fields/{key}",  # a key, looked up in the caller's tenant
    "/api/v1/postal/{code}",  # public postal data
    "/api/v1/calls/{call_id}",  # tests/test_calls_api.py: another tenant's (and another agent's) call is 404
    "/api/v1/calls/{call_id}/wrap-up",
    "/api/v1/calls/{call_id}/recording",  # test_calls_api.py::test_a_recording_file_is_served_to_managers…
    # Call control: tests/test_call_control_api.py::test_another_tenants_or_agents_call_cannot_be_controlled
    "/api/v1/calls/{call_id}/answer",
    "/api/v1/calls/{call_id}/hold",
    "/api/v1/calls/{call_id}/hangup",
    "/api/v1/calls/{call_id}/transfer",
    "/api/v1/calls/{call_id}/transfer/complete",
    "/api/v1/calls/{call_id}/transfer/cancel",
    "/api/v1/calls/{call_id}/monitor",
    "/api/v1/billing/plans/{plan_id}",  # tests/test_billing.py::test_another_tenants_plan_is_not_found
    "/api/v1/privacy/sources/{source_id}",  # tests/test_privacy.py::test_another_tenant_neither_lists_nor_reads…
    "/api/v1/queues/{queue_id}/stats",  # tests/test_metrics.py::test_another_tenants_queue_is_not_found
    # Routing configuration holds no customer data: tests/test_routing_api.py and tests/test_agents_api.py
    # (…another_tenants… → 404 with nothing of B in the answer).
    "/api/v1/queues/{queue_id}",
    "/api/v1/queues/{queue_id}/members",
    "/api/v1/inbound-numbers/{number_id}",
    "/api/v1/agents/{agent_id}",
    "/api/v1/agents/{agent_id}/state",
    "/api/v1/agents/{agent_id}/history",
    "/api/v1/voicemails/{voicemail_id}",  # test_routing_api.py::test_another_tenants_voicemail_is_not_found
    # IVR flows hold no customer data: tests/test_ivr_flows.py::test_another_tenants_flow_is_not_found
    # (every route and the page with B's flow id → 404, and nothing of B's flow in the answer)
    "/api/v1/ivr/flows/{flow_id}",
    "/api/v1/ivr/flows/{flow_id}/versions",
    "/api/v1/ivr/flows/{flow_id}/versions/{version}",
    "/api/v1/ivr/flows/{flow_id}/versions/{version}/restore",
    "/ivr/{flow_id}",
    # The campaign editor page: tests/test_campaigns_pages.py::test_another_tenants_campaign_is_not_found
    "/campaigns/{campaign_id}",
}


def test_every_route_with_an_id_is_in_the_adversarial_suite(app_client: TestClient) -> None:
    """A new route taking an id fails here until it is added to ``by_id_calls`` (or justified above)."""
    from kakehashi.auth.guard import api_routes

    ids = {"customer_id": "{cid}", "complaint_id": "{complaint_id}"}
    covered = {path.replace("{cid}", "{customer_id}") for _m, path, _p, _b in by_id_calls(ids)}
    with_ids = {path for _m, path, _r in api_routes(app_client.app) if "{" in path}  # type: ignore[arg-type]
    assert with_ids - covered - NOT_CUSTOMER_DATA == set()


def denied_row(session: Session, client: TestClient) -> AuditEvent:
    rows = denied_rows(session, client.user.username)  # type: ignore[attr-defined]
    assert len(rows) == 1
    return rows[0]


def test_a_role_refusal_on_another_tenants_customer_does_not_record_its_id_as_ours(
    client_as: ClientAs, b_data: dict[str, Any], session: Session
) -> None:
    """Tenant A's client viewer PATCHes B's customer: refused by role (403) before any lookup. A's audit row
    must not name B's customer as one of A's: no customer_id, flagged cross_tenant, the id in the detail."""
    viewer = client_as(Role.CLIENT_VIEWER, "tenant-a")
    assert viewer.patch(f"/api/v1/customers/{b_data['customer_id']}", json={"notes": "x"}).status_code == 403
    row = denied_row(session, viewer)
    assert row.tenant_id == viewer.user.tenant_id  # type: ignore[attr-defined]
    assert row.customer_id is None and row.resource_id is None
    assert row.detail is not None and row.detail["status"] == 403
    assert row.detail["cross_tenant"] is True and row.detail["attempted_customer_id"] == b_data["customer_id"]


def test_a_role_refusal_on_the_tenants_own_customer_keeps_its_id(
    client_as: ClientAs, b_data: dict[str, Any], session: Session
) -> None:
    viewer = client_as(Role.CLIENT_VIEWER, "tenant-b")
    assert viewer.patch(f"/api/v1/customers/{b_data['customer_id']}", json={"notes": "x"}).status_code == 403
    row = denied_row(session, viewer)
    assert row.customer_id == row.resource_id == b_data["customer_id"]
    assert row.detail is not None and row.detail["cross_tenant"] is False


def test_a_refusal_on_an_id_that_does_not_exist_records_no_customer(a_admin: TestClient, session: Session) -> None:
    assert a_admin.get("/api/v1/customers/987654321").status_code == 404
    row = denied_row(session, a_admin)
    assert row.customer_id is None and row.resource_id is None
    assert row.detail is not None and row.detail["cross_tenant"] is False
    assert row.detail["attempted_customer_id"] == 987654321


def test_a_404_on_another_tenants_id_records_it_only_in_the_detail(
    a_admin: TestClient, b_data: dict[str, Any], session: Session
) -> None:
    assert a_admin.get("/api/v1/screenpop", params={"customer_id": b_data["customer_id"]}).status_code == 404
    row = denied_row(session, a_admin)
    assert row.customer_id is None and row.resource_id is None
    assert row.detail is not None and row.detail["cross_tenant"] is True
    assert row.detail["attempted_customer_id"] == b_data["customer_id"]
