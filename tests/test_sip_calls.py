"""Real SIP calls end to end: baresip phones → Kamailio + rtpengine → the CTI's media worker → the app.

The app runs with ``telephony_driver=sip`` against its own database (a SQLite file, or a PostgreSQL database
of its own): the driver's threads write calls while the test reads them, which the shared-connection test
fixtures are not made for. Everything is on 127.0.0.1 (``kakehashi.telephony.drivers.sip.lab``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from conftest import BACKENDS, PG_URL
from kakehashi.app import create_app
from kakehashi.auth import service as auth
from kakehashi.auth.models import User
from kakehashi.auth.passwords import hash_password
from kakehashi.calls.models import Call, Cdr
from kakehashi.kit import migrate
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Role
from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work
from kakehashi.kit.dbadmin import recreate_database
from kakehashi.telephony.drivers.sip.lab import Phone, SipStack, read_wav
from kakehashi.tenants import repository as tenants

pytestmark = pytest.mark.sip
T = TypeVar("T")
CENTER_NUMBER = "0120444444"
CUSTOMER = "0312345678"
MENU_FLOW = {
    "start": "notice",
    "nodes": {
        "notice": {"type": "notice", "prompt": "この通話は録音します", "record": True, "next": "menu"},
        "menu": {"type": "menu", "prompt": "ご注文は1を", "options": {"1": "orders"}, "on_fail": "orders"},
        "orders": {"type": "queue", "queue": "orders"},
    },
}


def eventually(check: Callable[[], T | None], timeout: float = 20.0, what: str = "") -> T:
    """Poll ``check`` until it gives a value (real SIP takes real time; no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'sip.db'}"
    else:
        url = PG_URL.rsplit("/", 1)[0] + f"/kakehashi_sip_{os.getpid()}"
        recreate_database(url)
    engine = make_engine(url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()
    if request.param != "sqlite":
        recreate_database(url, create=False)


@dataclass
class As:
    """One user's requests on the shared client (one client: the app, and its SIP driver, start once)."""

    client: TestClient
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, headers=self.headers, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.client.post(url, headers=self.headers, **kw)

    def put(self, url: str, **kw: Any) -> Any:
        return self.client.put(url, headers=self.headers, **kw)

    def websocket_connect(self, url: str) -> Any:
        return self.client.websocket_connect(url, headers=self.headers)


@dataclass
class Center:
    stack: SipStack
    admin: As
    operator: As
    engine: Engine
    app: Any

    def call(self, **where: Any) -> Call | None:
        with make_session_factory(self.engine)() as s:
            stmt = select(Call).filter_by(**where).order_by(Call.id.desc())
            return s.scalars(stmt).first()

    def cdr(self, call_id: int) -> Cdr | None:
        with make_session_factory(self.engine)() as s:
            return s.scalars(select(Cdr).where(Cdr.call_id == call_id)).first()

    def phone(self, user: str, **options: Any) -> Phone:
        phone = self.stack.phone(user, **options)
        phone.wait_registered()
        return phone


def _token(engine: Engine, username: str, role: Role) -> str:
    with unit_of_work(make_session_factory(engine)) as s:
        center = tenants.get_or_create(s, "center", "コールセンター")
        user = User(username=username, display_name=username, role=role.value, tenant_id=center.id,
                    password_hash=hash_password("sip-test-passphrase"), active=True)  # fmt: skip
        s.add(user)
        s.flush()
        secret, _ = auth.issue_token(s, user, "sip test")
        return secret


@pytest.fixture
def center(database: Engine, tmp_path: Path) -> Iterator[Center]:
    from sip_world import ENGINE

    with SipStack(tmp_path / "lab", cti_engine=ENGINE) as stack:
        settings = Settings(
            data_dir=tmp_path / "data", database_url=str(database.url), default_tenant="center",
            telephony_driver="sip", sip_proxy=f"127.0.0.1:{stack.sip_port}", sip_media_port=stack.cti_port,
            sip_no_answer_s=6, sip_engine=ENGINE, sip_rtpengine_ng=f"127.0.0.1:{stack.ng_port}",
            sip_recording_spool=stack.recording_dir, sip_dtmf_port=stack.dtmf_log_port or 22230,
        )  # fmt: skip
        admin_token = _token(database, "sip-admin", Role.ADMIN)
        operator_token = _token(database, "agent1", Role.OPERATOR)
        app = create_app(settings, engine=database)
        with TestClient(app) as client:
            admin, operator = As(client, admin_token), As(client, operator_token)
            _configure(admin)
            yield Center(stack, admin, operator, database, app)


def _configure(admin: As) -> None:
    def ok(r: Any) -> Any:
        assert r.status_code < 300, r.text
        return r.json()

    ok(admin.post("/api/v1/billing/plans", json={"name": "標準", "rates": [
        {"direction": "inbound", "kind": "fixed", "yen_per_second": "0.05"},
        {"direction": "outbound", "kind": "fixed", "yen_per_second": "0.10"},
        {"direction": "outbound", "kind": "mobile", "yen_per_second": "0.20"},
    ]}))  # fmt: skip
    ok(admin.post("/api/v1/customers", json={"name": "山田 花子", "kana": "ヤマダ ハナコ",
                                             "phones": [{"number": "03-1234-5678"}]}))  # fmt: skip
    ok(admin.post("/api/v1/agents", json={"name": "agent1", "display_name": "佐藤 エージェント"}))
    queue = ok(admin.post("/api/v1/queues", json={"name": "orders", "label": "注文", "ring_timeout_s": 30}))
    ok(admin.put(f"/api/v1/queues/{queue['id']}/members", json={"members": {"agent1": 1}}))
    ok(admin.post("/api/v1/ivr/flows", json={"name": "main", "definition": MENU_FLOW}))
    ok(admin.post("/api/v1/inbound-numbers", json={"number": "0120-444-444", "flow": "main"}))


def test_inbound_call_through_ivr_to_an_agent_with_screen_pop_audio_recording_and_cdr(center: Center) -> None:
    agent = center.phone("agent1", tone_hz=660)
    customer = center.phone(CUSTOMER, tone_hz=440)
    assert center.operator.post("/api/v1/agents/me/state", json={"state": "available"}).json()["state"] == "available"

    with center.operator.websocket_connect("/api/v1/events") as ws:
        assert ws.receive_json()["type"] == "hello"
        customer.dial(CENTER_NUMBER)
        offered = eventually(lambda: center.call(state="ivr"), what="the call in the IVR")
        assert (offered.ani_e164, offered.direction) == ("+81312345678", "inbound")
        customer.wait_for("CALL_ESTABLISHED", timeout=10)  # the IVR answered
        customer.send_dtmf("1")  # during the prompts: the menu takes keys as soon as it is asked
        incoming = agent.wait_for("CALL_INCOMING", timeout=30)
        assert incoming.peer_user == CUSTOMER  # the agent's phone shows the caller's number
        ringing = ws.receive_json()
        while ringing.get("name") != "agent.ringing":
            ringing = ws.receive_json()
        pop = ringing["screen_pop"]
        assert pop["known"] is True and pop["customer"]["name"] == "山田 花子"
        agent.answer()
        agent.wait_for("CALL_ESTABLISHED", timeout=10)
        eventually(lambda: center.call(state="connected"), what="connected")
        heard_by_agent = agent.wait_for_audio(min_rms=0.05, timeout=10, min_seconds=2.0)
        heard_by_customer = customer.wait_for_audio(min_rms=0.05, timeout=10, min_seconds=2.0)
        assert heard_by_agent and heard_by_customer
        customer.hangup()
        agent.wait_for("CALL_CLOSED", timeout=10)

    call = eventually(lambda: center.call(state="wrap_up"), what="wrap-up")
    assert call.digits == "1" and call.agent == "agent1" and call.queue == "orders"
    assert call.recording_ref == f"sip/{call.ref}.wav"
    wrapped = center.operator.post(f"/api/v1/calls/{call.id}/wrap-up", json={"disposition": "受注"})
    assert wrapped.status_code == 200, wrapped.text
    cdr = eventually(lambda: center.cdr(call.id), what="the CDR")
    assert cdr.final_state == "ended" and cdr.disposition == "受注"
    assert Decimal(1) <= cdr.talk_seconds <= Decimal(15)
    assert cdr.ring_seconds < Decimal(10) and cdr.queue_seconds < Decimal(10)
    assert cdr.cost_yen is not None and cdr.cost_yen > 0  # inbound to 0120 from a fixed line: billed

    # The PJSIP engine writes the WAV during the call; rtpengine's media plane makes it from its pcap right after.
    wav = center.app.state.settings.data_dir / "recordings" / f"{call.ref}.wav"
    eventually(lambda: wav.is_file(), what="the recording's WAV")
    recording = read_wav(wav)
    assert recording.seconds > 2 and recording.rms() > 0.05  # both voices, after the prompts

    # The recording is on the customer's timeline and downloadable by a supervisor or admin only.
    customer_id = call.customer_id
    timeline = center.admin.get(f"/api/v1/customers/{customer_id}/contacts").json()
    entry = next(item for item in timeline if item["channel"] == "call")
    assert entry["ref"] == {"call_id": call.id, "recording": True} and entry["summary"].startswith("着信 通話")
    download = center.admin.get(f"/api/v1/calls/{call.id}/recording")
    assert download.status_code == 200 and download.headers["content-type"] == "audio/wav"
    assert download.content[:4] == b"RIFF" and len(download.content) > 16_000
    assert center.operator.get(f"/api/v1/calls/{call.id}/recording").status_code == 403


def test_outbound_call_answered_and_bridged_to_an_agent_then_no_answer_and_busy(center: Center) -> None:
    agent = center.phone("agent1", tone_hz=660, auto_answer=True)
    customer = center.phone(CUSTOMER, tone_hz=440)
    driver = center.app.state.telephony.driver
    tenant = center.app.state.default_tenant_id

    ref = driver.originate("+81312345678", caller_id="+81120444444", tenant_id=tenant)
    ringing = customer.wait_for("CALL_INCOMING", timeout=10)
    assert ringing.peer_user == CENTER_NUMBER  # the customer sees the center's number
    customer.answer()
    eventually(lambda: center.call(ref=ref, state="connected"), what="the customer answered")
    driver.route_to_agent(ref, "agent1")  # what a callback or a campaign does next
    agent.wait_for("CALL_ESTABLISHED", timeout=10)
    eventually(lambda: (c := center.call(ref=ref)) and c.agent == "agent1" and c, what="bridged to agent1")
    assert agent.wait_for_audio(min_rms=0.05, timeout=10, min_seconds=1.5)
    assert customer.wait_for_audio(min_rms=0.05, timeout=10, min_seconds=1.5)
    agent.hangup()
    customer.wait_for("CALL_CLOSED", timeout=10)
    eventually(lambda: center.call(ref=ref, state="wrap_up"), what="the agent's wrap-up")

    unanswered = driver.originate("+81312345678", caller_id="+81120444444", tenant_id=tenant)
    customer.wait_for("CALL_INCOMING", timeout=10)  # rings, nobody picks up
    eventually(lambda: center.call(ref=unanswered, state="no_answer"), timeout=20, what="no answer")
    customer.wait_for("CALL_CLOSED", timeout=10)

    busy = driver.originate("+81312345678", caller_id="+81120444444", tenant_id=tenant)
    customer.wait_for("CALL_INCOMING", timeout=10)
    customer.hangup()  # rejects the ringing call: 486 Busy Here
    eventually(lambda: center.call(ref=busy, state="busy"), what="busy")
    cdrs = [center.cdr(c.id) for c in (center.call(ref=unanswered), center.call(ref=busy)) if c is not None]
    assert [(c.final_state, c.talk_seconds, c.cost_yen or 0) for c in cdrs if c] == [
        ("no_answer", 0, 0), ("busy", 0, 0)
    ]  # fmt: skip


def test_a_preview_campaign_call_reaches_a_baresip_callee_and_the_result_settles_the_lead(center: Center) -> None:
    """The campaign dialer on real SIP: the operator takes a lead (its card), dials, the customer's baresip phone
    answers, the operator's phone (auto-answer) is bridged to them; the result code saved after the opening was
    confirmed ends the wrap-up, and the call and its CDR carry the campaign."""
    agent = center.phone("agent1", tone_hz=660, auto_answer=True)
    customer = center.phone(CUSTOMER, tone_hz=440)
    admin, operator = center.admin, center.operator
    windows = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]
    codes = [{"code": "アポ獲得", "human": True, "contact": True, "success": True, "final": True}]
    assert (
        admin.put("/api/v1/dispositions", json={"dispositions": [{"code": "アポ獲得", "kind": "sale"}]}).status_code
        == 200
    )
    made = admin.post("/api/v1/campaigns", json={
        "name": "SIP キャンペーン", "kind": "appointment", "caller_id": "0120-444-444", "dial_mode": "preview",
        "opening_statement": "株式会社かけはしの佐藤です。", "windows": windows,
        "night_reason": "試験: 夜間も発信する", "agents": ["agent1"], "result_codes": codes,
    })  # fmt: skip
    assert made.status_code == 201, made.text
    campaign = made.json()["id"]
    assert admin.post(f"/api/v1/campaigns/{campaign}/leads", json={"phones": ["03-1234-5678"]}).json()["added"] == 1
    assert admin.post(f"/api/v1/campaigns/{campaign}/start").status_code == 200
    assert operator.post("/api/v1/agents/me/state", json={"state": "available"}).status_code == 200

    desk = operator.post("/api/v1/desk/outbound/next", json={"campaign_id": campaign}).json()
    assert desk["card"]["stage"] == "preview" and desk["card"]["campaign"]["opening_statement"]
    dialled = operator.post("/api/v1/desk/outbound/dial")
    assert dialled.status_code == 200, dialled.text
    ringing = customer.wait_for("CALL_INCOMING", timeout=10)
    assert ringing.peer_user == CENTER_NUMBER  # the campaign's caller ID
    customer.answer()
    agent.wait_for("CALL_ESTABLISHED", timeout=10)
    assert customer.wait_for_audio(min_rms=0.05, timeout=10, min_seconds=1.5)  # hears the agent's phone
    call = eventually(lambda: (c := center.call(campaign_id=campaign)) and c.agent == "agent1" and c, what="bridged")
    assert operator.post("/api/v1/desk/outbound/opening").status_code == 200
    customer.hangup()
    eventually(lambda: center.call(ref=call.ref, state="wrap_up"), what="the agent's wrap-up")
    saved = operator.post("/api/v1/desk/outbound/result", json={"code": "アポ獲得"})
    assert saved.status_code == 200, saved.text
    ended = eventually(lambda: center.call(ref=call.ref, state="ended"), what="closed with the result")
    assert (ended.disposition, ended.lead_id is not None) == ("アポ獲得", True)
    cdr = eventually(lambda: center.cdr(ended.id), what="the CDR")
    assert cdr.campaign_id == campaign and cdr.talk_seconds > 0
    leads = admin.get(f"/api/v1/campaigns/{campaign}/leads").json()
    assert [(lead["status"], lead["last_result"]) for lead in leads] == [("done", "success")]
