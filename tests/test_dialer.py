"""The campaign dialer end to end on the simulator with a virtual clock and the database (SQLite and
PostgreSQL): progressive and preview dialing, line results through the retry rules, the opening statement
(特定商取引法 Art.16) before a conversation's result, refusals (Art.17), callbacks on time, numbers blocked at the
moment of dialing, manual dials, and calls and CDRs that carry the campaign (costs by campaign)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.agents import service as agents
from kakehashi.calls import service as calls
from kakehashi.calls.models import Call, Cdr
from kakehashi.calls.sink import CallEventSink
from kakehashi.campaigns import attempts
from kakehashi.campaigns import service as campaigns
from kakehashi.campaigns.models import Lead, LeadAttempt, Refusal
from kakehashi.campaigns.schemas import CampaignCreate, LeadsIn
from kakehashi.dialer import OUTBOUND_WRAP_UP_S, Dialer, DialerListener
from kakehashi.dialer import attach as attach_dialer
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import unit_of_work
from kakehashi.kit.errors import Conflict, ValidationFailed
from kakehashi.kit.timers import VirtualClock
from kakehashi.routing import service as routing
from kakehashi.routing.controller import CallController
from kakehashi.routing.engine import AgentState
from kakehashi.routing.persist import DbDirectory
from kakehashi.telephony.drivers.sim.driver import SimDriver
from wrap_ups import closing_wrap_ups

#: Tuesday 8 December 2026, 10:00 in Japan: a working day inside the campaign's window.
START = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)
BUSY, TALKER, SILENT = "+81355550001", "+81355550002", "+81355550003"
CODES = [
    {"code": "アポ獲得", "human": True, "contact": True, "success": True, "final": True},
    {"code": "お断り", "human": True, "contact": True, "refusal": True},
    {"code": "再架電", "human": True, "contact": True, "callback": True},
    {"code": "本人不在", "human": True},
]


@dataclass
class Floor:
    sim: SimDriver
    clock: VirtualClock
    controller: CallController
    dialer: Dialer
    factory: sessionmaker[Session]
    actor: Actor
    campaign_id: int

    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def state(self, agent: str = "sato") -> AgentState:
        return self.controller.engine(self.actor.tenant_id).agent(agent).state

    def lead(self, phone: str) -> Lead:
        with self.factory() as s:
            return s.scalars(select(Lead).where(Lead.phone == phone)).one()

    def attempts(self) -> list[LeadAttempt]:
        with self.factory() as s:
            return list(s.scalars(select(LeadAttempt).order_by(LeadAttempt.id)))

    def agent_actor(self, name: str = "sato") -> Actor:
        return Actor(tenant_id=self.actor.tenant_id, username=name, role=Role.OPERATOR)


def _floor(factory: sessionmaker[Session], actor: Actor, *, mode: str, phones: list[str]) -> Floor:
    with unit_of_work(factory) as s:
        agents.create_agent(s, actor, "sato", "佐藤", {})
        queue = routing.create_queue(s, actor, "sales", {"wrap_up_s": 10})
        routing.set_members(s, actor, queue.id, {"sato": 1})
        routing.add_number(s, actor, "0120-444-444", flow=None, queue="sales")
        from kakehashi.dispositions import service as dispositions
        from kakehashi.dispositions.schemas import DispositionIn

        dispositions.replace_dispositions(s, actor, [DispositionIn(code=c["code"], kind="contact") for c in CODES])
        windows = [{"weekday": d, "start": "09:00", "end": "20:00"} for d in range(7)]
        campaign = campaigns.create_campaign(s, actor, CampaignCreate.model_validate({
            "name": "秋の見直しキャンペーン", "kind": "appointment", "caller_id": "03-1234-5678", "dial_mode": mode,
            "opening_statement": "株式会社かけはしの佐藤です。保険の見直しのご案内でお電話しました。",
            "windows": windows, "queues": ["sales"], "result_codes": CODES, "ring_timeout_s": 25,
        }))  # fmt: skip
        campaigns.add_leads(s, actor, campaign.id, LeadsIn(phones=phones))
        campaigns.set_status(s, actor, campaign.id, "running")
        campaign_id = campaign.id
    clock = VirtualClock(START)
    sim = SimDriver(clock)
    sim.set_agent("sato", answer_after=1)
    CallEventSink.attach(sim, factory)
    listener = DialerListener(factory, sim.name)
    controller = CallController(sim, clock, DbDirectory(factory), listener).attach()
    dialer = attach_dialer(controller, sim, factory, clock, listener)
    controller.choose_state(actor.tenant_id, "sato", AgentState.AVAILABLE)
    return Floor(sim, clock, controller, dialer, factory, actor, campaign_id)


@pytest.fixture
def progressive(session_factory: sessionmaker[Session], actor: Actor) -> Iterator[Floor]:
    with closing_wrap_ups(_floor(session_factory, actor, mode="progressive", phones=[BUSY, TALKER, SILENT])) as f:
        yield f


@pytest.fixture
def preview(session_factory: sessionmaker[Session], actor: Actor) -> Iterator[Floor]:
    with closing_wrap_ups(_floor(session_factory, actor, mode="preview", phones=[TALKER])) as f:
        yield f


def finish(f: Floor, code: str, **kw: object) -> LeadAttempt:
    with unit_of_work(f.factory) as s:
        agent = f.agent_actor()
        attempt = attempts.current(s, agent, "sato")
        assert attempt is not None
        return attempts.finish(s, agent, attempt.id, "sato", code, f.clock.now(), driver="sim", **kw)  # type: ignore[arg-type]


def confirm(f: Floor) -> None:
    with unit_of_work(f.factory) as s:
        agent = f.agent_actor()
        attempt = attempts.current(s, agent, "sato")
        assert attempt is not None
        attempts.confirm_opening(s, agent, attempt.id, "sato", f.clock.now())


def test_progressive_dials_for_the_free_agent_one_lead_after_the_other(progressive: Floor) -> None:
    f = progressive
    f.sim.set_number(BUSY, "busy")
    f.sim.set_number(TALKER, "answer", ring_seconds=6, talk_s=40)
    f.sim.set_number(SILENT, "no_answer")
    f.dialer.join(f.agent_actor(), "sato", f.campaign_id)
    f.wait(0)
    assert f.state() is AgentState.RINGING  # held while the first lead's number rings
    f.wait(1.5)  # busy after 1 s: the lead waits for its retry, the agent gets the next lead at once
    busy = f.lead(BUSY)
    assert (busy.status, busy.last_result, busy.attempts) == ("in_progress", "busy", 1)
    assert busy.next_call_at is not None and busy.next_call_at - f.clock.now() > timedelta(minutes=9)
    f.wait(6 + 1)  # the second answers after 6 s, the agent's phone picks up after 1 s
    assert f.state() is AgentState.ON_CALL
    f.wait(40)
    assert f.state() is AgentState.WRAP_UP  # nothing is dialled while the agent writes up the call
    with pytest.raises(ValidationFailed, match="opening"):
        finish(f, "アポ獲得")  # Art.16: a conversation's result needs the opening statement confirmed
    confirm(f)
    done = finish(f, "アポ獲得")
    assert (done.disposition, done.success, done.contact, done.human) == ("アポ獲得", True, True, True)
    assert done.opening_confirmed_at is not None and done.talk_seconds == 41  # from the answer, as the CDR
    assert f.lead(TALKER).status == "done"
    f.wait(0)  # the wrap-up ended with the result: the third lead is dialled
    assert f.state() is AgentState.RINGING
    f.wait(25)  # the campaign's ring time-out
    silent = f.lead(SILENT)
    assert (silent.status, silent.last_result) == ("in_progress", "no_answer")
    assert [a.result for a in f.attempts()] == ["busy", "answered", "no_answer"]
    with f.factory() as s:
        talk = s.scalars(select(Call).where(Call.lead_id == f.lead(TALKER).id)).one()
        assert (talk.campaign_id, talk.direction, talk.disposition) == (f.campaign_id, "outbound", "アポ獲得")
        cdrs = list(s.scalars(select(Cdr).where(Cdr.campaign_id == f.campaign_id)))
        assert len(cdrs) == 3
        month = f.clock.now().strftime("%Y-%m")
        by_campaign = calls.cost_summary(s, f.actor, month=month, group="campaign")
        assert [(r["campaign"], r["calls"]) for r in by_campaign] == [(str(f.campaign_id), 3)]
    # The lead calls the center back: routing knows the agent who called them (sticky queues keep them together).
    assert DbDirectory(f.factory).caller(f.actor.tenant_id, "03-5555-0002").last_agent == "sato"


def test_a_refusal_blocks_the_number_and_a_callback_is_dialled_on_time(progressive: Floor) -> None:
    f = progressive
    f.sim.set_number(BUSY, "answer", ring_seconds=3, talk_s=20)
    f.sim.set_number(TALKER, "answer", ring_seconds=3, talk_s=20)
    f.sim.set_number(SILENT, "no_answer")
    f.dialer.join(f.agent_actor(), "sato", f.campaign_id)
    f.wait(30)
    confirm(f)
    finish(f, "お断り")
    with f.factory() as s:
        refusal = s.scalars(select(Refusal).where(Refusal.e164 == BUSY)).one()
        assert refusal.lifted_at is None
    assert f.lead(BUSY).status == "excluded"
    f.wait(30)  # the second lead: the person asks to be called back in an hour
    confirm(f)
    with pytest.raises(ValidationFailed, match="call back"):
        finish(f, "再架電")
    finish(f, "再架電", callback_at=f.clock.now() + timedelta(hours=1))
    talker = f.lead(TALKER)
    assert (talker.status, talker.callback_agent) == ("callback", "sato")
    with unit_of_work(f.factory) as s:  # the agent's desk lists it
        promised = attempts.my_callbacks(s, f.agent_actor(), "sato")
    assert [(c["lead_id"], c["phone"], c["at"]) for c in promised] == [(talker.id, TALKER, talker.next_call_at)]
    f.wait(60)  # the third lead rings out (no answer) — then nothing is due until the callback
    assert f.state() is AgentState.AVAILABLE
    f.wait(3600)
    refs = [a.lead_id for a in f.attempts()]
    assert refs[-1] == talker.id  # dialled again on time (the periodic check picks it up)
    assert f.lead(TALKER).attempts == 1  # counting the callback's attempt once its result is in


def test_preview_the_agent_reads_the_card_then_dials(preview: Floor) -> None:
    f = preview
    f.sim.set_number(TALKER, "answer", ring_seconds=4, talk_s=30)
    agent = f.agent_actor()
    with unit_of_work(f.factory) as s:
        opened = attempts.open_next(s, agent, f.campaign_id, "sato", f.clock.now())
        assert opened.attempt is not None
        card = attempts.card(s, agent, opened.attempt)
        attempt_id = opened.attempt.id
    assert card["stage"] == "preview" and card["campaign"]["opening_statement"].startswith("株式会社かけはし")
    assert [c["code"] for c in card["campaign"]["result_codes"]] == [c["code"] for c in CODES]
    f.wait(120)  # nothing happens until the agent presses dial
    assert f.state() is AgentState.AVAILABLE and f.attempts()[0].call_ref is None
    f.dialer.dial(agent, "sato", attempt_id)
    with pytest.raises(Conflict, match="dialled already"):  # a second press (two tabs): the call goes on
        f.dialer.dial(agent, "sato", attempt_id)
    f.wait(4 + 1)
    assert f.state() is AgentState.ON_CALL
    f.wait(30)
    confirm(f)
    assert finish(f, "アポ獲得").success
    assert f.state() is AgentState.AVAILABLE


def test_a_number_put_on_the_dnc_list_while_its_card_is_up_is_not_dialled(preview: Floor) -> None:
    f = preview
    agent = f.agent_actor()
    with unit_of_work(f.factory) as s:
        opened = attempts.open_next(s, agent, f.campaign_id, "sato", f.clock.now())
        assert opened.attempt is not None
        attempt_id = opened.attempt.id
        campaigns.add_dnc(s, f.actor, TALKER, "本人から架電停止の申し出")
    with pytest.raises(Conflict, match="dnc"):
        f.dialer.dial(agent, "sato", attempt_id)
    assert f.lead(TALKER).status == "excluded"
    assert f.attempts()[0].result == "skipped" and f.state() is AgentState.AVAILABLE
    with pytest.raises(Conflict, match="dnc"):
        f.dialer.dial_manual(agent, "sato", "03-5555-0002", None)  # by hand neither


def test_a_manual_dial_goes_out_from_the_centers_number(preview: Floor) -> None:
    f = preview
    f.sim.set_number("+81355559999", "answer", ring_seconds=2, talk_s=10)
    ref = f.dialer.dial_manual(f.agent_actor(), "sato", "03-5555-9999", None)
    f.wait(3)
    assert f.state() is AgentState.ON_CALL
    with f.factory() as s:
        call = s.scalars(select(Call).where(Call.ref == ref)).one()
        assert (call.direction, call.campaign_id, call.ani_raw) == ("outbound", None, "+81120444444")


def test_an_unsaved_wrap_up_closes_and_the_lead_is_tried_again(progressive: Floor) -> None:
    f = progressive
    for phone in (BUSY, TALKER, SILENT):
        f.sim.set_number(phone, "answer", ring_seconds=2, talk_s=10)
    f.dialer.join(f.agent_actor(), "sato", f.campaign_id)
    f.wait(0)
    f.dialer.leave(f.agent_actor(), "sato")
    f.wait(2 + 1 + 10 + OUTBOUND_WRAP_UP_S + 1)
    first = f.lead(BUSY)
    assert (first.status, first.last_result, first.attempts) == ("in_progress", "answered", 1)
    assert first.next_call_at is not None and first.reserved_by is None
    assert f.attempts()[0].ended_at is not None and f.attempts()[0].disposition is None
    assert f.state() is AgentState.AVAILABLE and len(f.attempts()) == 1  # left the campaign: no more dials


def test_logging_out_gives_the_card_back_and_leaves_the_campaign(preview: Floor) -> None:
    f = preview
    agent = f.agent_actor()
    f.dialer.join(agent, "sato", f.campaign_id)
    with unit_of_work(f.factory) as s:
        assert attempts.open_next(s, agent, f.campaign_id, "sato", f.clock.now()).attempt is not None
    f.controller.choose_state(f.actor.tenant_id, "sato", AgentState.LOGGED_OUT)
    lead = f.lead(TALKER)
    assert (lead.status, lead.reserved_by, lead.attempts) == ("new", None, 0)
    assert f.attempts()[0].result == "skipped" and f.dialer.joined(f.actor.tenant_id, "sato") is None
