"""The call-flow contract: every telephony driver must pass these flows unchanged.

The CTI side uses only the boundary (``TelephonyDriver`` commands, events into the calls domain); the
"outside world" (callers, customers' phones, agents' phones) and the passing of time are the harness's
job. Today the harness runs the simulator on a virtual clock; the SIP driver gets its own harness
(baresip phones, real time) and runs the same tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.calls import service as calls
from kakehashi.calls.models import Call, Cdr
from kakehashi.calls.sink import CallEventSink
from kakehashi.kit.context import Actor
from kakehashi.kit.db import unit_of_work
from kakehashi.telephony.drivers.sim.driver import SimDriver
from kakehashi.telephony.port import RecordingState, TelephonyDriver

CENTER_NUMBER = "0120-444-444"
CALLER = "03-1234-5678"


@dataclass
class Harness:
    driver: TelephonyDriver
    sim: SimDriver  # the outside world; a SIP harness provides the same helpers with real phones
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
    yield Harness(driver=sim, sim=sim, factory=session_factory, actor=actor)


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
