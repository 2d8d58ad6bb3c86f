"""The call-flow contract: every telephony driver must pass these flows unchanged.

The CTI side uses only the boundary (``TelephonyDriver`` commands, events into the calls domain); the
"outside world" (callers, customers' phones, agents' phones) and the passing of time are the harness's
job. Today the harness runs the simulator on a virtual clock; the SIP driver gets its own harness
(baresip phones, real time) and runs the same tests.

The first tests give the driver commands by hand; the routing tests put the call controller (IVR runner and
ACD) on top of the driver, as the app does, with an in-memory directory and the database listener.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.calls import service as calls
from kakehashi.calls.models import Call, Cdr
from kakehashi.calls.sink import CallEventSink
from kakehashi.ivr.flow import Flow
from kakehashi.ivr.runner import Exit
from kakehashi.ivr.validate import validate_flow
from kakehashi.kit.context import Actor
from kakehashi.kit.db import Base, unit_of_work
from kakehashi.kit.events import Event, bus
from kakehashi.routing.controller import MAX_MESSAGE_S, VOICEMAIL_PROMPT, CallController, Clock, NumberRoute
from kakehashi.routing.directory import StaticDirectory
from kakehashi.routing.engine import AgentState, QueueRules
from kakehashi.routing.models import Callback, Voicemail
from kakehashi.routing.persist import DbListener
from kakehashi.telephony.drivers.sim.driver import SimDriver
from kakehashi.telephony.port import DriverEvent, RecordingChanged, RecordingState, TelephonyDriver

CENTER_NUMBER = "0120-444-444"
CENTER_NUMBER_E164 = "+81120444444"
CALLER = "03-1234-5678"
CALLER_E164 = "+81312345678"
T = TypeVar("T")


@dataclass
class Harness:
    driver: TelephonyDriver
    sim: SimDriver  # the outside world; a SIP harness provides the same helpers with real phones
    clock: Clock  # the driver's time, for the call controller's timers
    factory: sessionmaker[Session]
    actor: Actor

    def wait(self, seconds: float) -> None:
        self.sim.clock.advance(seconds)

    def call(self, ref: str) -> Call:
        with self.factory() as s:
            found = s.scalars(select(Call).where(Call.ref == ref)).one()
            s.expunge(found)
            return found

    def cdr(self, ref: str) -> Cdr:
        with self.factory() as s:
            found = s.scalars(select(Cdr).join(Call, Call.id == Cdr.call_id).where(Call.ref == ref)).one()
            s.expunge(found)
            return found

    def queue(self, ref: str, queue: str) -> None:
        """What the routing layer does: mark the call queued and park the caller."""
        with unit_of_work(self.factory) as s:
            call = s.scalars(select(Call).where(Call.ref == ref)).one()
            calls.queue_call(s, call, queue, self.sim.clock.now())
        self.driver.park(ref)


@pytest.fixture(params=["sim"])
def rig(request: pytest.FixtureRequest, session_factory: sessionmaker[Session], actor: Actor) -> Iterator[Harness]:
    sim = SimDriver()
    CallEventSink.attach(sim, session_factory)
    sim.set_agent("sato", answer_after=4)
    sim.set_agent("suzuki", answer_after=3)
    yield Harness(driver=sim, sim=sim, clock=sim.clock, factory=session_factory, actor=actor)


def test_inbound_answered_with_ivr_digit_then_wrap_up(rig: Harness) -> None:
    ref = rig.sim.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id, presses="1")
    rig.driver.answer(ref)
    rig.driver.play(ref, "welcome")
    rig.driver.collect_digits(ref, max_digits=1, timeout_s=5)
    rig.wait(2)
    assert rig.call(ref).digits == "1"
    rig.queue(ref, "orders")
    rig.wait(10)
    rig.driver.route_to_agent(ref, "sato")
    rig.wait(5)
    assert rig.call(ref).state == "connected"
    rig.wait(120)
    rig.driver.hangup(ref)
    call = rig.call(ref)
    assert call.state == "wrap_up"
    with unit_of_work(rig.factory) as s:
        calls.finish_wrap_up(s, rig.actor, call.id, "受注", rig.sim.clock.now())
    cdr = rig.cdr(ref)
    assert (cdr.final_state, cdr.agent, cdr.disposition) == ("ended", "sato", "受注")
    assert (cdr.queue_seconds, cdr.ring_seconds, cdr.talk_seconds) == (Decimal(10), Decimal(4), Decimal(121))


def test_inbound_abandoned_in_queue(rig: Harness) -> None:
    ref = rig.sim.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id, patience=45)
    rig.driver.answer(ref)
    rig.queue(ref, "orders")
    rig.wait(60)
    assert rig.call(ref).state == "abandoned"
    assert rig.cdr(ref).end_cause == "caller_abandoned"


def test_inbound_transferred_blind_to_another_agent(rig: Harness) -> None:
    ref = rig.sim.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id)
    rig.driver.route_to_agent(ref, "sato")
    rig.wait(5)
    rig.driver.transfer(ref, "suzuki", attended=False)
    rig.wait(5)
    call = rig.call(ref)
    assert (call.state, call.agent, call.transferred_to) == ("connected", "suzuki", "suzuki")


@pytest.mark.parametrize(("outcome", "state"), [("answer", "connected"), ("no_answer", "no_answer"), ("busy", "busy")])
def test_outbound_outcomes(rig: Harness, outcome: str, state: str) -> None:
    rig.sim.set_number("090-1111-2222", outcome)
    ref = rig.driver.originate("090-1111-2222", caller_id="03-5555-0000", tenant_id=rig.actor.tenant_id)
    rig.wait(40)
    assert rig.call(ref).state == state


def test_recording_started_paused_and_resumed(rig: Harness) -> None:
    ref = rig.sim.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id)
    rig.driver.route_to_agent(ref, "sato")
    rig.wait(5)
    rig.driver.record(ref, RecordingState.STARTED)
    rig.driver.record(ref, RecordingState.PAUSED)  # the caller reads out a card number
    call = rig.call(ref)
    assert (call.recording_state, call.recording_ref) == ("paused", f"sim/{ref}.wav")
    rig.driver.record(ref, RecordingState.RESUMED)
    rig.driver.hangup(ref)
    assert rig.call(ref).recording_state == "resumed"


def test_a_restart_mid_call_loses_no_cdr(rig: Harness, session_factory: sessionmaker[Session]) -> None:
    """The process dies with calls up; a new one (new driver, empty memory) ends them from the database."""
    talking = rig.sim.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id)
    rig.driver.route_to_agent(talking, "sato")
    waiting = rig.sim.incoming(ani="06-6123-4567", dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id)
    rig.queue(waiting, "orders")
    rig.wait(30)
    fresh = SimDriver(prefix="after-restart")  # knows no calls: the old ones are gone with the process
    with unit_of_work(session_factory) as s:
        lost = calls.recover(s, fresh.name, fresh.live_calls(), rig.sim.clock.now())
    assert {c.ref for c in lost} == {talking, waiting}
    assert rig.call(talking).state == "wrap_up"  # closed by the agent's notes, then its CDR is written
    waited = rig.cdr(waiting)
    assert (waited.final_state, waited.end_cause) == ("failed", "system_restart")  # dropped by us: counted


def test_a_caller_hangs_up_after_their_talk_time(rig: Harness) -> None:
    ref = rig.sim.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id, talk_s=95)
    rig.driver.route_to_agent(ref, "sato")
    rig.wait(4 + 94)
    assert rig.call(ref).state == "connected"
    rig.wait(1)
    assert rig.call(ref).state == "wrap_up"


def test_starting_the_app_reconciles_calls_left_by_the_previous_process(
    rig: Harness, session_factory: sessionmaker[Session]
) -> None:
    """The real restart path: the app's start-up ends calls its (new) driver does not have."""
    from fastapi.testclient import TestClient

    from kakehashi.app import create_app
    from kakehashi.kit.config import Settings

    talking = rig.sim.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id)
    rig.driver.route_to_agent(talking, "sato")
    ringing = rig.sim.incoming(ani="06-6123-4567", dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id)
    rig.sim.set_agent("suzuki", answers=False)
    rig.driver.route_to_agent(ringing, "suzuki")
    rig.wait(30)
    app = create_app(Settings(database_url="sqlite://", default_tenant="center"), session_factory=session_factory)
    with TestClient(app):
        assert rig.call(talking).state == "wrap_up"
        dropped = rig.cdr(ringing)
        assert (dropped.final_state, dropped.end_cause) == ("failed", "system_restart")


# -- inbound routing: the call controller on top of the driver ----------------------------------------------

CARD_NUMBER = "4111111111111234"
PIN = "9876"
ORDER_LINE = validate_flow(
    {
        "start": "notice",
        "nodes": {
            "notice": {"type": "notice", "prompt": "品質向上のため録音します", "next": "menu"},
            "menu": {
                "type": "menu",
                "prompt": "ご注文は1、お問い合わせは2、折り返しは3、カードでのお支払いは4",
                "options": {"1": "orders", "2": "support", "3": "callback", "4": "card"},
                "on_fail": "orders",
            },
            "orders": {"type": "queue", "queue": "orders"},
            "support": {"type": "queue", "queue": "support"},
            "callback": {"type": "callback_offer", "prompt": "折り返しは1", "queue": "orders", "decline": "orders"},
            "card": {"type": "collect", "prompt": "カード番号16桁", "var": "card", "min_digits": 16, "max_digits": 16}
            | {"sensitive": True, "next": "pin", "on_fail": "orders"},
            "pin": {"type": "collect", "prompt": "暗証番号4桁", "var": "pin", "min_digits": 4, "max_digits": 4}
            | {"sensitive": True, "next": "thanks", "on_fail": "orders"},
            "thanks": {"type": "play", "prompt": "承りました", "next": "orders"},
        },
    },
    known_queues={"orders", "support"},
)


class Journal(DbListener):
    """The database listener, also noting each agent's states and the IVR's exits for the assertions."""

    def __init__(self, factory: sessionmaker[Session], driver: str) -> None:
        super().__init__(factory, driver)
        self.agent_states: dict[str, list[str]] = {}
        self.exits: dict[str, Exit] = {}

    def agent_state(
        self, tenant_id: int, agent: str, state: AgentState, reason: str | None, queue: str | None,
        call_ref: str | None, at: datetime,
    ) -> None:  # fmt: skip
        self.agent_states.setdefault(agent, []).append(state.value)
        super().agent_state(tenant_id, agent, state, reason, queue, call_ref, at)

    def ivr_exit(self, tenant_id: int, ref: str, path: list[str], exit: Exit, at: datetime) -> None:
        self.exits[ref] = exit
        super().ivr_exit(tenant_id, ref, path, exit, at)


@dataclass
class Center:
    rig: Harness
    controller: CallController
    journal: Journal
    published: list[Event]  # the CTI's own events (after commit)
    driver_events: list[DriverEvent]

    def log_in(self, *agents: str) -> None:
        for agent in agents:
            self.controller.choose_state(self.rig.actor.tenant_id, agent, AgentState.AVAILABLE)

    def dial(self, **caller: Any) -> str:
        return self.rig.sim.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=self.rig.actor.tenant_id, **caller)

    def agent(self, name: str) -> AgentState:
        return self.controller.engine(self.rig.actor.tenant_id).agent(name).state

    def events(self, ref: str, *names: str) -> list[tuple[str, str | None]]:
        """``(event, agent)`` of the call's events, in the order they went out (only ``names`` if given)."""
        return [
            (e.name, e.payload.get("agent"))
            for e in self.published
            if e.payload.get("call_ref") == ref and (not names or e.name in names)
        ]

    def rows(self, model: type[T]) -> list[T]:
        with self.rig.factory() as s:
            return list(s.scalars(select(model)))


@pytest.fixture
def published() -> Iterator[list[Event]]:
    seen: list[Event] = []
    off = [bus.subscribe(pattern, seen.append) for pattern in ("call.*", "agent.*")]
    yield seen
    for unsubscribe in off:
        unsubscribe()


class OpenCenter(Protocol):
    """``open_center(*queues, members={agent: {queue: level}}, flow=None)``: the center's number answered by
    ``flow``, or straight by the first queue."""

    def __call__(self, *queues: QueueRules, members: dict[str, dict[str, int]], flow: Flow | None = None) -> Center: ...


@pytest.fixture
def open_center(rig: Harness, published: list[Event]) -> OpenCenter:

    def build(*queues: QueueRules, members: dict[str, dict[str, int]], flow: Flow | None = None) -> Center:
        tenant = rig.actor.tenant_id
        directory = StaticDirectory()
        route = NumberRoute(tenant, flow=flow, queue=None if flow else queues[0].name,
                            callback_caller_id=CENTER_NUMBER_E164)  # fmt: skip
        directory.add_number(CENTER_NUMBER, route)
        directory.queues[tenant] = list(queues)
        directory.members[tenant] = [(a, q, level) for a, qs in members.items() for q, level in qs.items()]
        driver_events: list[DriverEvent] = []
        rig.driver.subscribe(driver_events.append)
        journal = Journal(rig.factory, rig.driver.name)
        controller = CallController(rig.driver, rig.clock, directory, journal).attach()
        return Center(rig, controller, journal, published, driver_events)

    return build


def test_the_key_pressed_in_the_ivr_menu_queues_the_caller_for_that_queues_agent(
    rig: Harness, open_center: OpenCenter
) -> None:
    center = open_center(
        QueueRules("orders", wrap_up_s=30), QueueRules("support", wrap_up_s=30),
        members={"sato": {"orders": 1}, "suzuki": {"support": 1}}, flow=ORDER_LINE,
    )  # fmt: skip
    center.log_in("sato", "suzuki")
    ref = center.dial(presses="2", talk_s=60)
    rig.wait(10)  # the key at 1 s, suzuki's phone rings 3 s
    call = rig.call(ref)
    assert (call.state, call.digits, call.queue, call.agent) == ("connected", "2", "support", "suzuki")
    assert (center.agent("suzuki"), center.agent("sato")) == (AgentState.ON_CALL, AgentState.AVAILABLE)
    rig.wait(60 + 30)  # the caller hangs up after 60 s of talk; support's wrap-up is 30 s
    cdr = rig.cdr(ref)
    assert (cdr.final_state, cdr.queue, cdr.agent, cdr.disposition) == ("ended", "support", "suzuki", "自動完了")
    assert center.events(ref) == [
        ("call.offered", None),
        ("call.answered", None),
        ("call.recording", None),  # after the recording notice
        ("call.dtmf", None),
        ("call.ivr_done", None),
        ("call.queued", None),
        ("agent.ringing", "suzuki"),
        ("call.bridged", "suzuki"),
        ("call.hangup", "suzuki"),
        ("call.ended", "suzuki"),
    ]
    assert center.journal.agent_states == {
        "sato": ["available"],
        "suzuki": ["available", "ringing", "on_call", "wrap_up", "available"],
    }


def test_an_agent_who_lets_it_ring_goes_missed_and_the_next_agent_rings(rig: Harness, open_center: OpenCenter) -> None:
    orders = QueueRules("orders", ring_timeout_s=10)
    center = open_center(orders, members={"sleepy": {"orders": 1}, "awake": {"orders": 1}})
    rig.sim.set_agent("sleepy", answers=False)
    rig.sim.set_agent("awake", answer_after=2)
    center.log_in("sleepy")
    rig.wait(1)
    center.log_in("awake")  # sleepy has been idle longer: their phone rings first
    ref = center.dial(talk_s=30)
    rig.wait(9)
    assert (rig.call(ref).state, rig.call(ref).agent) == ("ringing", "sleepy")
    assert center.agent("sleepy") is AgentState.RINGING
    rig.wait(5)  # 10 s of ringing, then awake's phone rings for 2 s
    call = rig.call(ref)
    assert (call.state, call.agent) == ("connected", "awake")
    assert center.agent("sleepy") is AgentState.MISSED  # until they say they are back
    assert center.events(ref, "agent.ringing", "call.queued", "call.bridged") == [
        ("call.queued", None),
        ("agent.ringing", "sleepy"),
        ("call.queued", "sleepy"),  # back in the queue, at the same place
        ("agent.ringing", "awake"),
        ("call.bridged", "awake"),
    ]
    assert center.journal.agent_states["sleepy"] == ["available", "ringing", "missed"]
    rig.wait(30 + 30)  # talk, then wrap-up
    cdr = rig.cdr(ref)
    assert (cdr.final_state, cdr.agent, cdr.ring_seconds) == ("ended", "awake", Decimal(12))  # both phones' rings


def test_a_caller_who_waits_too_long_overflows_to_voicemail(rig: Harness, open_center: OpenCenter) -> None:
    orders = QueueRules("orders", max_wait_s=30, overflow_action="voicemail")
    center = open_center(orders, members={"sato": {"orders": 1}})
    ref = center.dial()  # nobody is logged in
    rig.wait(31)
    call = rig.call(ref)
    assert (call.state, call.queue, call.recording_state) == ("voicemail", "orders", "started")
    assert rig.sim.prompts_played(ref)[-1] == VOICEMAIL_PROMPT
    rig.wait(MAX_MESSAGE_S)  # the system ends the message
    cdr = rig.cdr(ref)
    assert (cdr.final_state, cdr.queue, cdr.recording_ref) == ("voicemail", "orders", f"sim/{ref}.wav")
    (message,) = center.rows(Voicemail)
    assert (message.call_ref, message.queue, message.number_e164) == (ref, "orders", CALLER_E164)
    assert [name for name, _ in center.events(ref)] == [
        "call.offered", "call.answered", "call.queued", "call.voicemail", "call.recording", "call.ended",
    ]  # fmt: skip
    assert center.journal.agent_states == {}  # no agent was bothered


def test_a_callback_request_is_dialled_back_and_put_through_to_an_agent(rig: Harness, open_center: OpenCenter) -> None:
    center = open_center(QueueRules("orders", wrap_up_s=0), QueueRules("support"), members={"sato": {"orders": 1}},
                         flow=ORDER_LINE)  # fmt: skip
    rig.sim.set_number(CALLER, "answer", ring_seconds=5)  # the customer's phone, when we call back
    ref = center.dial(presses="31")  # "callback", then "yes"
    rig.wait(5)
    assert rig.cdr(ref).final_state == "callback"  # the caller heard the confirmation and the line dropped
    (request,) = center.rows(Callback)
    assert (request.origin_call_ref, request.queue, request.status) == (ref, "orders", "pending")
    center.log_in("sato")  # an agent is free: we dial the customer, then ring the agent
    rig.wait(5 + 4 + 1)
    (leg,) = [c for c in center.rows(Call) if c.direction == "outbound"]
    assert (leg.dnis, leg.ani_raw, leg.state, leg.agent) == (CALLER, CENTER_NUMBER_E164, "connected", "sato")
    (request,) = center.rows(Callback)
    assert (request.status, request.agent, request.attempts, request.last_call_ref) == ("done", "sato", 1, leg.ref)
    assert center.events(leg.ref) == [
        ("call.offered", None),
        ("call.answered", None),  # by the customer
        ("agent.ringing", "sato"),
        ("call.bridged", "sato"),
    ]
    assert center.journal.agent_states["sato"] == ["ringing", "on_call"]  # from logging in straight to the callback


def test_a_caller_who_hangs_up_while_queued_is_abandoned(rig: Harness, open_center: OpenCenter) -> None:
    center = open_center(QueueRules("orders"), QueueRules("support"), members={"sato": {"orders": 1}}, flow=ORDER_LINE)
    ref = center.dial(presses="1", patience=20)  # nobody is logged in
    rig.wait(30)
    cdr = rig.cdr(ref)
    assert (cdr.final_state, cdr.end_cause, cdr.queue, cdr.queue_seconds) == (
        "abandoned", "caller_abandoned", "orders", Decimal(19),  # queued after the key at 1 s
    )  # fmt: skip
    center.log_in("sato")
    rig.wait(30)
    assert center.journal.agent_states == {"sato": ["available"]}  # nobody left waiting for them
    assert center.controller.engine(rig.actor.tenant_id).waiting_count("orders") == 0


def test_sensitive_digits_are_kept_off_the_recording_and_stored_only_masked(
    rig: Harness, open_center: OpenCenter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    center = open_center(QueueRules("orders"), QueueRules("support"), members={"sato": {"orders": 1}}, flow=ORDER_LINE)
    center.log_in("sato")
    ref = center.dial(presses="4" + CARD_NUMBER + PIN, talk_s=30)
    rig.wait(1 + 16 + 4 + 10)
    call = rig.call(ref)
    assert (call.state, call.agent) == ("connected", "sato")  # the flow went on as usual
    assert center.journal.exits[ref].variables == {"card": "************1234", "pin": "****"}
    # Recording paused from the card number's prompt to after the PIN: the recording has only the menu key.
    recording = [e.state.value for e in center.driver_events if isinstance(e, RecordingChanged)]
    assert recording == ["started", "paused", "resumed"]
    assert rig.sim.keys_on_recording(ref) == "4"
    assert (call.digits, call.recording_state) == ("4", "resumed")
    rig.wait(60)
    secrets = (CARD_NUMBER, PIN)
    assert not [e for e in center.published if any(s in repr(e.payload) for s in secrets)]
    assert not [e for e in center.driver_events if any(s in repr(e) for s in secrets)]
    assert not [r for r in caplog.records if any(s in r.getMessage() for s in secrets)]
    with rig.factory() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)):
                assert not any(secret in repr(row) for secret in secrets), f"{table.name}: {row}"
