"""Predictive dialing on real SIP (issue 19): the campaign dialer places calls with no agent held through Kamailio and
rtpengine to baresip callees, and the media plane's answering-machine detector (``sip.plane_amd``) tells people from
machines.

Five leads are dialled at once (a scripted pacer: the number of calls does not depend on the pacer's estimates) for
two agents' phones: a 留守番電話 greeting (detected, dropped, no agent rung), two people who answer (each reaches an
agent and they hear each other), a third person who answers while both agents talk (nobody free within 2 s: they
hear the campaign's identification message and are hung up) and a number nobody answers. The callees' voices are
Open JTalk speech (``amd_voices``). The app runs with the SIP driver on the default engine, as in
``test_sip_calls``; the PJSIP engine has no detector (docs/telephony.md), so the test is for the media plane only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from amd_voices import PERSON_TALK_HZ, machine_wav, person_wav
from conftest import BACKENDS, PG_URL
from kakehashi.app import create_app
from kakehashi.campaigns.models import Lead, LeadAttempt
from kakehashi.kit import migrate
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Role
from kakehashi.kit.db import make_engine, make_session_factory
from kakehashi.kit.dbadmin import recreate_database
from kakehashi.pacing.types import DialOutcome, PacingState
from kakehashi.telephony.drivers.sip.lab import LabError, Phone, SipStack
from kakehashi.telephony.drivers.sip.prompts import wav_seconds
from sip_world import ENGINE
from test_sip_calls import As, _token, eventually

pytestmark = [
    pytest.mark.sip,
    pytest.mark.skipif(ENGINE != "rtpengine", reason="the PJSIP engine has no answering-machine detection"),
]
CENTER_NUMBER = "0120-444-444"
ABANDON = "株式会社かけはしです。ただいま担当者がおりません。改めてお電話いたします。お問い合わせは0120-444-444まで。"
AGENT_HZ = 660.0
MACHINE, PERSON_1, PERSON_2, PERSON_3, NOBODY = (f"+8131111000{n}" for n in range(1, 6))
LEADS = [MACHINE, PERSON_1, PERSON_2, PERSON_3, NOBODY]


def national(e164: str) -> str:
    return "0" + e164[3:]


@dataclass
class ScriptedPacer:
    """Places ``plan[i]`` calls at the i-th pacing tick (then none), as ``test_predictive``'s."""

    plan: list[int]
    outcomes: list[DialOutcome] = field(default_factory=list)

    def decide(self, state: PacingState) -> int:
        return self.plan.pop(0) if self.plan else 0

    def record(self, outcome: DialOutcome) -> None:
        self.outcomes.append(outcome)

    def handled(self, seconds: float, at: datetime) -> None:
        pass

    def wrapped(self, seconds: float, at: datetime) -> None:
        pass

    @property
    def level(self) -> float:
        return 1.0


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'sip.db'}"
    else:
        url = PG_URL.rsplit("/", 1)[0] + f"/kakehashi_sipp_{os.getpid()}"
        recreate_database(url)
    engine = make_engine(url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()
    if request.param != "sqlite":
        recreate_database(url, create=False)


@dataclass
class Floor:
    stack: SipStack
    app: Any
    engine: Engine
    admin: As
    agents: dict[str, As]

    def phone(self, user: str, **options: Any) -> Phone:
        phone = self.stack.phone(user, **options)
        phone.wait_registered()
        return phone

    def attempt(self, phone: str) -> LeadAttempt | None:
        with make_session_factory(self.engine)() as s:
            lead = s.scalars(select(Lead).where(Lead.phone == phone)).one()
            return s.scalars(select(LeadAttempt).where(LeadAttempt.lead_id == lead.id)).first()

    def result(self, phone: str, result: str) -> LeadAttempt | None:
        attempt = self.attempt(phone)
        return attempt if attempt is not None and attempt.result == result else None


@pytest.fixture
def floor(database: Engine, tmp_path: Path) -> Iterator[Floor]:
    with SipStack(tmp_path / "lab", cti_engine=ENGINE) as stack:
        settings = Settings(
            data_dir=tmp_path / "data", database_url=str(database.url), default_tenant="center",
            telephony_driver="sip", sip_proxy=f"127.0.0.1:{stack.sip_port}", sip_media_port=stack.cti_port,
            sip_no_answer_s=60, sip_engine=ENGINE, sip_rtpengine_ng=f"127.0.0.1:{stack.ng_port}",
            sip_recording_spool=stack.recording_dir, sip_dtmf_port=stack.dtmf_log_port or 22230,
        )  # fmt: skip
        admin_token = _token(database, "sip-admin", Role.ADMIN)
        tokens = {name: _token(database, name, Role.OPERATOR) for name in ("agent1", "agent2")}
        app = create_app(settings, engine=database)
        with TestClient(app) as client:
            agents = {name: As(client, token) for name, token in tokens.items()}
            yield Floor(stack, app, database, As(client, admin_token), agents)


def _ok(response: Any) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


def _campaign(admin: As) -> int:
    codes = [{"code": "アポ獲得", "human": True, "contact": True, "success": True, "final": True}]
    _ok(admin.put("/api/v1/dispositions", json={"dispositions": [{"code": "アポ獲得", "kind": "sale"}]}))
    for name in ("agent1", "agent2"):
        _ok(admin.post("/api/v1/agents", json={"name": name, "display_name": name}))
    campaign = _ok(admin.post("/api/v1/campaigns", json={
        "name": "予測発信 SIP", "kind": "sales", "caller_id": CENTER_NUMBER, "dial_mode": "predictive",
        "windows": [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)],
        "night_reason": "試験: 夜間も発信する", "agents": ["agent1", "agent2"], "result_codes": codes,
        "ring_timeout_s": 30, "predictive": {"abandon_message": ABANDON},
        "amd": {"enabled": True, "action": "drop"},
    }))["id"]  # fmt: skip
    assert _ok(admin.post(f"/api/v1/campaigns/{campaign}/leads", json={"phones": LEADS}))["added"] == len(LEADS)
    _ok(admin.post(f"/api/v1/campaigns/{campaign}/start"))
    return int(campaign)


def _hears(phone: Phone, hz: float) -> bool:
    """The last second a phone heard is a tone of ``hz`` (±5 %), loud."""
    try:
        audio = phone.received_audio()
    except (LabError, OSError):
        return False
    last = np.frombuffer(audio.samples, dtype=np.int16)[-audio.rate :].astype(np.float64) / 32768
    if len(last) < audio.rate or np.sqrt(np.mean(last**2)) < 0.2:
        return False
    crossings = np.count_nonzero(np.diff(np.signbit(last))) / 2
    return bool(abs(crossings - hz) < 0.05 * hz)


def _spoken_span_s(phone: Phone) -> float:
    """How long the audio a phone heard on its last call lasts, from its first loud sample to its last."""
    samples = np.frombuffer(phone.received_audio().samples, dtype=np.int16)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 0.02 * 32768)
    return float((loud[-1] - loud[0]) / 8000) if loud.size else 0.0


def test_a_predictive_campaign_on_real_sip_drops_the_machine_connects_people_and_abandons_with_the_message(
    floor: Floor, tmp_path: Path
) -> None:
    voices = tmp_path / "voices"
    agents = {name: floor.phone(name, tone_hz=AGENT_HZ, auto_answer=True) for name in ("agent1", "agent2")}
    callees = {
        MACHINE: floor.phone(national(MACHINE), audio_file=machine_wav(voices)),
        **{p: floor.phone(national(p), audio_file=person_wav(voices)) for p in (PERSON_1, PERSON_2, PERSON_3)},
        NOBODY: floor.phone(national(NOBODY)),
    }
    campaign = _campaign(floor.admin)
    driver = floor.app.state.telephony.driver
    message_s = wav_seconds(driver.prompts.wav_for(ABANDON))  # rendered now, not in the 2 s an abandon has
    pacer = ScriptedPacer([len(LEADS)])
    floor.app.state.telephony.dialer.predictive.pacer_factory = lambda _campaign: pacer
    for desk in floor.agents.values():
        _ok(desk.post("/api/v1/agents/me/state", json={"state": "available"}))
        _ok(desk.post("/api/v1/desk/outbound/join", json={"campaign_id": campaign}))

    for number, callee in callees.items():  # one pacing tick: every lead rings, no agent is held for them
        assert callee.wait_for("CALL_INCOMING", timeout=20).peer_user == "0120444444", number

    # The machine answers first, both agents free: its greeting is detected, the call dropped, nobody rung.
    callees[MACHINE].answer()
    callees[MACHINE].wait_for("CALL_CLOSED", timeout=20)
    machine = eventually(lambda: floor.result(MACHINE, "machine"), what="the machine's result")
    assert machine.agent is None
    assert not [e for a in agents.values() for e in a.events() if e.type.startswith("CALL_")], "an agent was rung"

    # Two people answer: each reaches an agent once the detector heard a person, and they hear each other.
    callees[PERSON_1].answer()
    callees[PERSON_2].answer()
    for agent in agents.values():
        agent.wait_for("CALL_ESTABLISHED", timeout=20)
    taken = {p: eventually(lambda p=p: floor.result(p, "answered"), what=f"{p} answered") for p in (PERSON_1, PERSON_2)}  # type: ignore[misc]
    assert sorted(a.agent or "" for a in taken.values()) == ["agent1", "agent2"]
    for name, agent in agents.items():  # the person talking once they waited (``amd_voices``: a tone)
        eventually(lambda agent=agent: _hears(agent, PERSON_TALK_HZ), what=f"{name} hearing the person")  # type: ignore[misc]
    for person in (PERSON_1, PERSON_2):
        eventually(lambda person=person: _hears(callees[person], AGENT_HZ), what=f"{person} hearing the agent")  # type: ignore[misc]

    # The third person answers while both agents talk: nobody free within 2 s — the identification message, then
    # we hang up.
    callees[PERSON_3].answer()
    callees[PERSON_3].wait_for("CALL_CLOSED", timeout=30)
    abandoned = eventually(lambda: floor.result(PERSON_3, "abandoned"), what="the abandon")
    assert (abandoned.agent, abandoned.human) == (None, True)
    heard = callees[PERSON_3].received_audio()
    assert heard.rms() > 0.02, "the abandoned person heard silence"
    assert _spoken_span_s(callees[PERSON_3]) == pytest.approx(message_s, abs=1.0)  # the whole message
    assert [len([e for e in a.events() if e.type == "CALL_ESTABLISHED"]) for a in agents.values()] == [1, 1]

    # Nobody answers the last number: no answer after the campaign's ring time-out.
    eventually(lambda: floor.result(NOBODY, "no_answer"), timeout=60, what="no answer")
    callees[NOBODY].wait_for("CALL_CLOSED", timeout=20)
    assert [(o.human, o.machine, o.abandoned) for o in pacer.outcomes if o.machine or o.abandoned] == [
        (False, True, False), (True, False, True),
    ]  # fmt: skip
    for person in (PERSON_1, PERSON_2):
        callees[person].hangup()
    for agent in agents.values():
        agent.wait_for("CALL_CLOSED", timeout=20)
