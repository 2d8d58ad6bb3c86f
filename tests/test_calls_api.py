"""Calls and CDRs over HTTP: tenant and agent scoping, wrap-up, CDR list and CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from conftest import ClientAs
from kakehashi.audit.models import AuditEvent
from kakehashi.calls.sink import CallEventSink
from kakehashi.kit.context import Role
from kakehashi.kit.db import utcnow
from kakehashi.kit.timers import VirtualClock
from kakehashi.telephony.drivers.sim.driver import SimDriver


@pytest.fixture
def talked(client_as: ClientAs, session_factory: sessionmaker[Session]) -> dict[str, object]:
    """A call from a known customer, answered by sato, hung up: now in wrap-up."""
    supervisor = client_as(Role.SUPERVISOR)
    sato = client_as(Role.OPERATOR, username="sato")
    cid = supervisor.post("/api/v1/customers", json={"name": "通話 太郎", "phones": [{"number": "0312345678"}]}).json()[
        "id"
    ]
    sim = SimDriver(VirtualClock(utcnow()))  # the wrap-up below is stamped with wall-clock time
    CallEventSink.attach(sim, session_factory)
    ref = sim.incoming(ani="03-1234-5678", dnis="0120-444-444", tenant_id=sato.user.tenant_id)  # type: ignore[attr-defined]
    sim.route_to_agent(ref, "sato")
    sim.clock.advance(120)
    sim.hangup(ref)
    from kakehashi.calls.models import Call

    with session_factory() as s:
        call_id = s.query(Call).filter_by(ref=ref).one().id
    return {"supervisor": supervisor, "sato": sato, "call_id": call_id, "customer_id": cid}


def test_the_agent_and_managers_see_the_call_others_do_not(
    talked: dict[str, object], client_as: ClientAs, session: Session
) -> None:
    call_id, sato, supervisor = talked["call_id"], talked["sato"], talked["supervisor"]
    got = sato.get(f"/api/v1/calls/{call_id}").json()  # type: ignore[attr-defined]
    assert got["state"] == "wrap_up" and [t["to_state"] for t in got["transitions"]] == [
        "offered", "ringing", "connected", "wrap_up"
    ]  # fmt: skip
    assert got["ani_e164"] == "+81312345678"
    assert supervisor.get(f"/api/v1/calls/{call_id}").status_code == 200  # type: ignore[attr-defined]
    assert client_as(Role.OPERATOR, username="suzuki").get(f"/api/v1/calls/{call_id}").status_code == 404
    assert client_as(Role.SUPERVISOR, "tenant-b").get(f"/api/v1/calls/{call_id}").status_code == 404
    reads = session.query(AuditEvent).filter_by(resource="call", customer_id=talked["customer_id"]).count()
    assert reads == 2  # sato and the supervisor read a known customer's call


def test_wrap_up_writes_the_cdr_listed_and_exported(talked: dict[str, object], client_as: ClientAs) -> None:
    call_id, sato, supervisor = talked["call_id"], talked["sato"], talked["supervisor"]
    assert (
        client_as(Role.OPERATOR, username="suzuki")
        .post(f"/api/v1/calls/{call_id}/wrap-up", json={"disposition": "x"})
        .status_code
        == 404
    )
    r = sato.post(f"/api/v1/calls/{call_id}/wrap-up", json={"disposition": "受注"})  # type: ignore[attr-defined]
    assert r.status_code == 200 and r.json()["state"] == "ended"
    again = sato.post(f"/api/v1/calls/{call_id}/wrap-up", json={"disposition": "受注"})  # type: ignore[attr-defined]
    assert again.status_code == 409
    page = supervisor.get("/api/v1/cdrs").json()  # type: ignore[attr-defined]
    assert page["total"] == 1 and page["items"][0]["disposition"] == "受注"
    assert page["items"][0]["talk_seconds"] == "118.000" or float(page["items"][0]["talk_seconds"]) == 118.0
    exported = supervisor.get("/api/v1/cdrs.csv")  # type: ignore[attr-defined]
    assert exported.headers["content-type"].startswith("text/csv") and exported.text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert [(r["call_id"], r["agent"], r["final_state"]) for r in rows] == [(str(call_id), "sato", "ended")]
    assert sato.get("/api/v1/cdrs").status_code == 403  # type: ignore[attr-defined]
    assert client_as(Role.SUPERVISOR, "tenant-b").get("/api/v1/cdrs").json()["total"] == 0


def test_monthly_costs_by_agent_and_day_as_json_and_csv(talked: dict[str, object]) -> None:
    from kakehashi.kit.clock import business_today

    sato, supervisor = talked["sato"], talked["supervisor"]
    sato.post(f"/api/v1/calls/{talked['call_id']}/wrap-up", json={"disposition": "受注"})  # type: ignore[attr-defined]
    month = business_today().strftime("%Y-%m")
    by_agent = supervisor.get("/api/v1/cdrs/costs", params={"month": month, "group": "agent"}).json()  # type: ignore[attr-defined]
    assert [(r["agent"], r["calls"], r["answered"]) for r in by_agent] == [("sato", 1, 1)]
    assert by_agent[0]["billed_seconds"] == 118  # an inbound call to the toll-free line, paid by the center
    total = supervisor.get("/api/v1/cdrs/costs", params={"month": month}).json()  # type: ignore[attr-defined]
    assert total[0]["cost_yen"] == by_agent[0]["cost_yen"]
    exported = supervisor.get("/api/v1/cdrs/costs.csv", params={"month": month, "group": "day"})  # type: ignore[attr-defined]
    assert exported.text.lstrip("\ufeff").splitlines()[0] == "day,calls,answered,billed_seconds,cost_yen"
    bad = supervisor.get("/api/v1/cdrs/costs", params={"month": "2026-13"})  # type: ignore[attr-defined]
    assert bad.status_code == 422


def test_a_recording_file_is_served_to_managers_of_the_tenant_only(
    talked: dict[str, object], client_as: ClientAs, session: Session, tmp_path: Any
) -> None:
    from kakehashi.calls.models import Call

    call_id, supervisor = talked["call_id"], talked["supervisor"]
    url = f"/api/v1/calls/{call_id}/recording"
    assert supervisor.get(url).status_code == 404  # type: ignore[attr-defined]  # a simulated call has no file
    call = session.get(Call, call_id)
    assert call is not None
    call.recording_ref = "sip/test-call.wav"
    session.flush()
    data_dir = supervisor.app.state.settings.data_dir  # type: ignore[attr-defined]
    (data_dir / "recordings").mkdir(parents=True, exist_ok=True)
    (data_dir / "recordings" / "test-call.wav").write_bytes(b"RIFF....WAVE")
    got = supervisor.get(url)  # type: ignore[attr-defined]
    assert got.status_code == 200 and got.content == b"RIFF....WAVE"
    assert client_as(Role.SUPERVISOR, "tenant-b").get(url).status_code == 404
    assert talked["sato"].get(url).status_code == 403  # type: ignore[attr-defined]
    reads = session.query(AuditEvent).filter_by(resource="recording", customer_id=talked["customer_id"]).count()
    assert reads == 1
    call.recording_ref = "sip/../../etc/passwd.wav"  # never outside the recordings folder
    session.flush()
    assert supervisor.get(url).status_code == 404  # type: ignore[attr-defined]


def test_a_finished_call_of_a_known_customer_is_on_their_timeline(talked: dict[str, object]) -> None:
    supervisor, sato = talked["supervisor"], talked["sato"]
    sato.post(f"/api/v1/calls/{talked['call_id']}/wrap-up", json={"disposition": "受注"})  # type: ignore[attr-defined]
    timeline = supervisor.get(f"/api/v1/customers/{talked['customer_id']}/contacts").json()  # type: ignore[attr-defined]
    (entry,) = [e for e in timeline if e["channel"] == "call"]
    assert (entry["direction"], entry["agent"], entry["summary"]) == (
        "inbound",
        "sato",
        "着信 通話 1分58秒 受注",
    )  # answered 2 s in
    assert entry["ref"] == {"call_id": talked["call_id"], "recording": False}


def test_listing_cdrs_is_an_audited_read_of_each_customer_on_the_page(
    talked: dict[str, object], session: Session
) -> None:
    supervisor, sato = talked["supervisor"], talked["sato"]
    sato.post(f"/api/v1/calls/{talked['call_id']}/wrap-up", json={"disposition": "受注"})  # type: ignore[attr-defined]
    page = supervisor.get("/api/v1/cdrs").json()  # type: ignore[attr-defined]
    assert [c["customer_id"] for c in page["items"]] == [talked["customer_id"]]
    reads = session.query(AuditEvent).filter_by(resource="cdr", customer_id=talked["customer_id"]).count()
    assert reads == 1
