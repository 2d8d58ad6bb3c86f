"""``/api/v1/campaigns`` over HTTP: roles, masking, the 422 of the night rule, tenancy (issue 17); the predictive
campaigns' live pacing for the wallboard (issue 19)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from conftest import ClientAs
from kakehashi.dialer.predictive import PacedCampaign
from kakehashi.kit.context import Role
from kakehashi.kit.db import utcnow
from kakehashi.pacing.predictive import PredictivePacer

WINDOWS = [{"weekday": d, "start": "09:00", "end": "20:00"} for d in range(7)]
BODY: dict[str, Any] = {"name": "秋の見直し", "kind": "sales", "caller_id": "03-1234-5678", "windows": WINDOWS}


def test_a_supervisor_manages_a_campaign_and_a_client_viewer_reads_it_masked(client_as: ClientAs) -> None:
    supervisor = client_as(Role.SUPERVISOR)
    r = supervisor.post("/api/v1/campaigns", json=BODY)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    added = supervisor.post(f"/api/v1/campaigns/{cid}/leads", json={"phones": ["090-1234-5678", "x"]}).json()
    assert added == {"added": 1, "scrubbed": [{"phone": "x", "reason": "invalid"}]}
    assert supervisor.patch(f"/api/v1/campaigns/{cid}", json={"goal": 50}).json()["goal"] == 50
    assert supervisor.post(f"/api/v1/campaigns/{cid}/start").json()["status"] == "running"
    assert supervisor.get(f"/api/v1/campaigns/{cid}/leads").json()[0]["phone"] == "+819012345678"
    viewer = client_as(Role.CLIENT_VIEWER)
    assert viewer.get(f"/api/v1/campaigns/{cid}").status_code == 200
    assert viewer.get(f"/api/v1/campaigns/{cid}/leads").json()[0]["phone"] == "+8190****5678"
    assert viewer.post(f"/api/v1/campaigns/{cid}/pause").status_code == 403
    operator = client_as(Role.OPERATOR)
    assert operator.post("/api/v1/campaigns", json={**BODY, "name": "x"}).status_code == 403


def test_a_night_window_without_a_reason_is_a_422_naming_the_field(client_as: ClientAs) -> None:
    night = {**BODY, "windows": [{"weekday": 0, "start": "20:00", "end": "22:00"}]}
    r = client_as(Role.ADMIN).post("/api/v1/campaigns", json=night)
    assert r.status_code == 422
    assert "night_reason" in {e["field"] for e in r.json()["errors"]}


def test_an_operator_reserves_and_records_an_outcome(client_as: ClientAs) -> None:
    admin = client_as(Role.ADMIN)
    always = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]
    body = {**BODY, "windows": always, "holidays_off": False, "night_reason": "試験: 終日"}
    cid = admin.post("/api/v1/campaigns", json=body).json()["id"]
    admin.post(f"/api/v1/campaigns/{cid}/leads", json={"phones": ["090-1234-5678"]})
    operator = client_as(Role.OPERATOR)
    assert operator.post(f"/api/v1/campaigns/{cid}/reserve").json() == {"lead": None, "reason": "the campaign is draft"}
    admin.post(f"/api/v1/campaigns/{cid}/start")
    lead = operator.post(f"/api/v1/campaigns/{cid}/reserve").json()["lead"]
    r = operator.post(
        f"/api/v1/campaigns/{cid}/leads/{lead['id']}/outcome", json={"result": "answered", "refusal": True}
    )
    assert r.status_code == 200 and r.json()["status"] == "excluded"
    refusals = admin.get("/api/v1/campaigns/refusals").json()
    assert len(refusals) == 1 and refusals[0]["scope"] == "company"
    supervisor = client_as(Role.SUPERVISOR)
    assert (
        supervisor.post(f"/api/v1/campaigns/refusals/{refusals[0]['id']}/lift", json={"reason": "x"}).status_code == 403
    )
    lifted = admin.post(f"/api/v1/campaigns/refusals/{refusals[0]['id']}/lift", json={"reason": "本人の依頼"})
    assert lifted.status_code == 200 and lifted.json()["lifted_by"]


def test_the_dnc_list_is_added_to_listed_and_removed(client_as: ClientAs) -> None:
    supervisor = client_as(Role.SUPERVISOR)
    r = supervisor.post("/api/v1/campaigns/dnc", json={"phone": "03-3000-0001", "reason": "本人申出"})
    assert r.status_code == 201 and r.json()["e164"] == "+81330000001"
    assert supervisor.post("/api/v1/campaigns/dnc", json={"phone": "0330000001"}).status_code == 409
    assert [row["id"] for row in supervisor.get("/api/v1/campaigns/dnc").json()] == [r.json()["id"]]
    assert supervisor.delete(f"/api/v1/campaigns/dnc/{r.json()['id']}").status_code == 204
    assert supervisor.get("/api/v1/campaigns/dnc").json() == []


def test_given_another_tenants_campaign_dnc_and_refusal_when_called_then_404(client_as: ClientAs) -> None:
    """Tenant A's callers get 404 for every B id, with nothing of B in the answer."""
    b = client_as(Role.ADMIN, "tenant-b")
    always = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]
    body = {**BODY, "windows": always, "holidays_off": False, "night_reason": "試験: 終日"}
    cid = b.post("/api/v1/campaigns", json=body).json()["id"]
    b.post(f"/api/v1/campaigns/{cid}/leads", json={"phones": ["090-1234-5678", "090-1234-0000"]})
    b.post(f"/api/v1/campaigns/{cid}/start")
    refused = b.post(f"/api/v1/campaigns/{cid}/reserve").json()["lead"]["id"]
    b.post(f"/api/v1/campaigns/{cid}/leads/{refused}/outcome", json={"result": "answered", "refusal": True})
    refusal_id = b.get("/api/v1/campaigns/refusals").json()[0]["id"]
    lead_id = b.post(f"/api/v1/campaigns/{cid}/reserve").json()["lead"]["id"]
    dnc_id = b.post("/api/v1/campaigns/dnc", json={"phone": "03-3000-0001"}).json()["id"]
    a = client_as(Role.ADMIN, "tenant-a")
    calls = [
        ("GET", f"/api/v1/campaigns/{cid}", None),
        ("PATCH", f"/api/v1/campaigns/{cid}", {"goal": 1}),
        ("POST", f"/api/v1/campaigns/{cid}/start", None),
        ("POST", f"/api/v1/campaigns/{cid}/pause", None),
        ("POST", f"/api/v1/campaigns/{cid}/stop", None),
        ("GET", f"/api/v1/campaigns/{cid}/leads", None),
        ("POST", f"/api/v1/campaigns/{cid}/leads", {"phones": ["090-1111-2222"]}),
        ("POST", f"/api/v1/campaigns/{cid}/reserve", None),
        ("POST", f"/api/v1/campaigns/{cid}/leads/{lead_id}/outcome", {"result": "busy"}),
        ("DELETE", f"/api/v1/campaigns/dnc/{dnc_id}", None),
        ("POST", f"/api/v1/campaigns/refusals/{refusal_id}/lift", {"reason": "x"}),
    ]
    for method, path, body in calls:
        r = a.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.status_code)
        assert "秋の見直し" not in r.text and "5678" not in r.text
    assert a.get("/api/v1/campaigns").json() == [] and a.get("/api/v1/campaigns/dnc").json() == []
    assert a.get("/api/v1/campaigns/refusals").json() == []
    assert b.get(f"/api/v1/campaigns/{cid}").json()["status"] == "running"
    assert b.get("/api/v1/campaigns/refusals").json()[0]["lifted_at"] is None
    assert len(b.get("/api/v1/campaigns/dnc").json()) == 1
    held = [lead for lead in b.get(f"/api/v1/campaigns/{cid}/leads").json() if lead["id"] == lead_id]
    assert held[0]["reserved_by"] is not None and held[0]["attempts"] == 0


def _paced(tenant_id: int, campaign_id: int, *, humans: int, abandoned: int, unseen: float = 0.0) -> dict[str, Any]:
    """The dialer's own snapshot of a paced campaign (``PacedCampaign.snapshot``) with these counts of today."""
    now = utcnow()
    paced = PacedCampaign(tenant_id, campaign_id, PredictivePacer(), dials=40, unseen=unseen)
    for i in range(humans):
        paced.count(now - timedelta(minutes=i), human=True, abandoned=i < abandoned)
    return paced.snapshot(now)


def test_the_wallboard_rate_counts_the_detectors_estimated_false_machines() -> None:
    """With machines hung up on, the people taken for machines are estimated (f/(1 − f) per person let through)
    and counted in the rate as abandoned; the line's own counts stay apart."""
    row = _paced(1, 1, humans=98, abandoned=1, unseen=0.02 / 0.98)
    assert (row["answered_24h"], row["abandoned_24h"], row["estimated_24h"]) == (98, 1, 2.0)
    assert row["abandon_rate_24h"] == pytest.approx(3 / 100, abs=1e-4)
    assert row["abandon_rate_30d"] == row["abandon_rate_24h"]


def test_the_pacing_of_predictive_campaigns_for_the_wallboard(client_as: ClientAs, monkeypatch: Any) -> None:
    """``GET /api/v1/campaigns/pacing``: the dialer's live snapshots of the caller's tenant with each campaign's name
    and abandon target; empty (never a 409) when nothing is paced or no phone system runs; managers only."""
    supervisor = client_as(Role.SUPERVISOR)
    assert supervisor.get("/api/v1/campaigns/pacing").json() == []  # the dialer runs, nothing is paced
    body = {**BODY, "name": "予測テスト", "dial_mode": "predictive", "predictive": {"abandon_target": 0.02}}
    created = supervisor.post("/api/v1/campaigns", json=body).json()
    other = client_as(Role.ADMIN, "tenant-b").post("/api/v1/campaigns", json={**BODY, "name": "B社"}).json()
    tenant_id = supervisor.user.tenant_id  # type: ignore[attr-defined]
    snapshots = [
        _paced(tenant_id, created["id"], humans=50, abandoned=1),
        _paced(tenant_id, other["id"], humans=10, abandoned=5),  # not this tenant's campaign: left out
    ]
    app = supervisor.app
    asked: list[int] = []
    dialer = app.state.telephony.dialer  # type: ignore[attr-defined]
    monkeypatch.setattr(dialer, "pacing", lambda tenant: asked.append(tenant) or snapshots)
    r = supervisor.get("/api/v1/campaigns/pacing")
    assert r.status_code == 200 and asked == [tenant_id]
    [row] = r.json()
    assert row["campaign_id"] == created["id"] and row["name"] == "予測テスト" and row["abandon_target"] == 0.02
    assert (row["answered_24h"], row["abandoned_24h"], row["abandon_rate_24h"]) == (50, 1, 0.02)
    assert (row["answered_30d"], row["abandoned_30d"], row["dials"]) == (50, 1, 40)
    assert {"dial_level", "calls_in_flight", "calls_waiting", "agents_active", "agents_ready"} <= set(row)
    assert row["estimated_24h"] == 0.0  # no machine detection: nobody hung up on by mistake
    assert client_as(Role.ADMIN).get("/api/v1/campaigns/pacing").json() == [row]
    for role in (Role.OPERATOR, Role.CLIENT_VIEWER):
        assert client_as(role).get("/api/v1/campaigns/pacing").status_code == 403
    running = app.state.telephony  # type: ignore[attr-defined]
    app.state.telephony = None  # type: ignore[attr-defined]  # no phone system: still an answer, an empty one
    try:
        assert supervisor.get("/api/v1/campaigns/pacing").json() == []
    finally:
        app.state.telephony = running  # type: ignore[attr-defined]
