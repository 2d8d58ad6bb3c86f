"""The call-flow contract: every telephony driver must pass these flows unchanged.

The CTI side uses only the boundary (``TelephonyDriver`` commands, events into the calls domain); the
"outside world" (callers, customers' phones, agents' phones) and the passing of time are the harness's
job, behind one interface (``World``): the simulator's helpers on a virtual clock (``tests/sim_world.py``),
or baresip phones around the real SIP driver in real time (``tests/sip_world.py``, ``-m sip``). Each test runs
on both, with the same steps; durations are short so that the real-time runs stay short, and a measured
duration is compared with ``rig.approx`` (exact on the virtual clock, within SIP's latency on the real one).

The first tests give the driver commands by hand; the routing tests put the call controller (IVR runner and
ACD) on top of the driver, as the app does, with an in-memory directory and the database listener.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from conftest import PG_URL
from kakehashi.calls import service as calls
from kakehashi.calls.models import Call, CallTransition, Cdr
from kakehashi.calls.sink import CallEventSink
from kakehashi.customers import service as customers
from kakehashi.customers.schemas import CustomerCreate
from kakehashi.ivr.flow import Flow
from kakehashi.ivr.runner import Exit
from kakehashi.ivr.validate import validate_flow
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Actor
from kakehashi.kit.db import Base, make_session_factory, unit_of_work
from kakehashi.kit.events import Event, bus
from kakehashi.kit.phone import try_normalize_phone
from kakehashi.routing import deflections as routing_deflections
from kakehashi.routing.controller import CALLBACK_CONFIRMED, VOICEMAIL_PROMPT, CallController, Clock, NumberRoute
from kakehashi.routing.directory import StaticDirectory
from kakehashi.routing.engine import AgentState, QueueRules
from kakehashi.routing.models import Callback, Voicemail
from kakehashi.routing.persist import DbListener
from kakehashi.stream import service as stream
from kakehashi.telephony.drivers.sim.driver import SimDriver
from kakehashi.telephony.port import (
    Bridged,
    Consult,
    DriverEvent,
    Ended,
    HoldChanged,
    RecordingChanged,
    RecordingState,
    TelephonyDriver,
    Transferred,
)
from kakehashi.tenants import repository as tenants
from sim_world import SimWorld

if TYPE_CHECKING:  # imported when a SIP test runs: the SIP driver needs the optional ``sip`` extra
    from sip_world import Databases, Labs, SipWorld

CENTER_NUMBER = "0120-444-444"
CENTER_NUMBER_E164 = "+81120444444"
CALLER = "03-1234-5678"
CALLER_E164 = "+81312345678"
T = TypeVar("T")

#: Where the SIP driver is known to break the contract, by name → why (see ``Harness.known_bug``); none today.
SIP_DRIVER_BUGS: dict[str, str] = {}


class World(Protocol):
    """Callers, customers' phones, agents' phones and dialled numbers, and the passing of time."""

    name: str
    tolerance: float  # how far a measured duration may be off (s): 0 on a virtual clock
    key_s: float  # a caller keys one digit this often, from when the IVR asks
    no_answer_s: float  # the phone system gives up an outbound call nobody answers after this

    def incoming(
        self,
        *,
        ani: str,
        dnis: str,
        tenant_id: int,
        presses: str = "",
        patience: float | None = None,
        talk_s: float | None = None,
    ) -> str:
        """A caller dials in; ``presses``: the digits they key when asked; ``patience``: they hang up after
        that long unless an agent answered; ``talk_s``: they hang up that long after an agent answered."""
        ...

    def set_agent(self, name: str, *, answer_after: float = 2.0, answers: bool = True) -> None: ...
    def set_number(
        self, number: str, outcome: str, *, ring_seconds: float = 8.0, talk_s: float | None = None
    ) -> None: ...
    def caller_hangs_up(self, call_ref: str) -> None: ...
    def consulted_agent_hangs_up(self, call_ref: str) -> None:
        """The colleague an agent consults for an attended transfer hangs up (or refuses while it rings)."""
        ...

    def prompts_played(self, call_ref: str) -> list[str]: ...
    def keys_on_recording(self, call_ref: str) -> str: ...
    def wait(self, seconds: float) -> None: ...
    def until(self, check: Callable[[], bool], timeout: float) -> bool: ...
    def restarted_driver(self) -> TelephonyDriver: ...
    def app_settings(self, data_dir: Path) -> Settings: ...


@dataclass
class Harness:
    driver: TelephonyDriver  # what the CTI talks to
    world: World  # the outside world
    clock: Clock  # the driver's time, for the call controller's timers
    factory: sessionmaker[Session]
    actor: Actor

    def wait(self, seconds: float) -> None:
        self.world.wait(seconds)

    def settle(self, check: Callable[[], bool], timeout: float = 15.0) -> None:
        """Give events time to arrive, on a real clock only (the simulator's are synchronous, and on its virtual
        clock what is due has happened): what a command caused, or what the world did at the time waited for.
        Does not assert (a check that raises counts as not yet): the assertions that follow say what is wrong."""

        def holds() -> bool:
            try:
                return check()
            except Exception:
                return False

        self.world.until(holds, timeout)

    def approx(self, seconds: float) -> Any:
        """A measured duration: exact on a virtual clock, within the world's tolerance on a real one."""
        expected = Decimal(str(seconds))
        if not self.world.tolerance:
            return expected
        return pytest.approx(expected, abs=Decimal(str(self.world.tolerance)), rel=Decimal(0))

    @contextmanager
    def known_bug(self, bug: str) -> Iterator[None]:
        """``with rig.known_bug(name): assert …``: assertions the SIP driver fails because of a known bug of its
        own (``SIP_DRIVER_BUGS``): expected to fail there (reported as xfail), and an error once they pass, so
        that the fix shows and the mark goes. Everything else in the test is asserted as usual."""
        if self.world.name != "sip":
            yield
            return
        try:
            yield
        except AssertionError:
            pytest.xfail(f"SIP driver bug: {SIP_DRIVER_BUGS[bug]}")
        raise AssertionError(f"the SIP driver bug {bug!r} is gone: remove it from SIP_DRIVER_BUGS and the test")

    def recording_ref(self, ref: str) -> str:
        return f"{self.driver.name}/{ref}.wav"

    def call(self, ref: str) -> Call:
        with self.factory() as s:
            found = s.scalars(select(Call).where(Call.ref == ref)).one()
            s.expunge(found)
            return found

    def has_cdr(self, ref: str) -> bool:
        with self.factory() as s:
            found = s.scalars(select(Cdr.id).join(Call, Call.id == Cdr.call_id).where(Call.ref == ref)).first()
            return found is not None

    def cdr(self, ref: str) -> Cdr:
        with self.factory() as s:
            found = s.scalars(select(Cdr).join(Call, Call.id == Cdr.call_id).where(Call.ref == ref)).one()
            s.expunge(found)
            return found

    def transitions(self, ref: str) -> list[tuple[str, str | None]]:
        """The call's states as the calls domain recorded them, with the agent each names."""
        with self.factory() as s:
            rows = s.scalars(select(CallTransition).join(Call, Call.id == CallTransition.call_id)
                             .where(Call.ref == ref).order_by(CallTransition.id))  # fmt: skip
            return [(row.to_state, (row.detail or {}).get("agent")) for row in rows]

    def driver_events(self) -> list[DriverEvent]:
        """Every event the driver sends from now on (in the order it sends them)."""
        seen: list[DriverEvent] = []
        self.driver.subscribe(seen.append)
        return seen

    def sip(self) -> SipWorld | None:
        """The world of real phones, for what only it can check (what the phones hear); None on the simulator."""
        return cast("SipWorld", self.world) if self.world.name == "sip" else None

    def wrap_up(self, ref: str) -> Cdr:
        with unit_of_work(self.factory) as s:
            calls.finish_wrap_up(s, self.actor, self.call(ref).id, "受注", self.clock.now())
        return self.cdr(ref)

    def queue(self, ref: str, queue: str) -> None:
        """What the routing layer does: mark the call queued and park the caller."""
        with unit_of_work(self.factory) as s:
            call = s.scalars(select(Call).where(Call.ref == ref)).one()
            calls.queue_call(s, call, queue, self.clock.now())
        self.driver.park(ref)


def _agents(world: World) -> None:
    world.set_agent("sato", answer_after=1)
    world.set_agent("suzuki", answer_after=1)


@pytest.fixture(params=["sim", pytest.param("sip", marks=pytest.mark.sip)])
def rig(request: pytest.FixtureRequest, engine: Engine, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "sim":
        factory: sessionmaker[Session] = request.getfixturevalue("session_factory")
        actor: Actor = request.getfixturevalue("actor")
        sim = SimDriver()
        CallEventSink.attach(sim, factory)
        world = SimWorld(sim)
        _agents(world)
        yield Harness(driver=sim, world=world, clock=sim.clock, factory=factory, actor=actor)
    else:
        yield from _sip_rig(request.getfixturevalue("sip_session"), engine.dialect.name, tmp_path)


def _sip_rig(session: SipSession, backend: str, tmp_path: Path) -> Iterator[Harness]:
    """Real SIP around the real driver, with a database of its own on the backend under test (the driver's
    threads write while the test reads). The teardown runs in the background once the CTI is detached."""
    with ExitStack() as teardown:
        factory = make_session_factory(teardown.enter_context(session.databases.fresh(backend, tmp_path)))
        with unit_of_work(factory) as s:
            actor = Actor(tenant_id=tenants.get_or_create(s, "center", "コールセンター").id, username="tester")
        world = session.labs.take()
        teardown.callback(world.close)
        CallEventSink.attach(world.driver, factory)
        try:
            yield Harness(driver=world.driver, world=world, clock=world.clock, factory=factory, actor=actor)
        finally:
            world.driver.detach()  # no event reaches this test's database or listeners any more
            session.labs.later(teardown.pop_all().close)


@dataclass
class SipSession:
    """What the SIP tests share: database templates, SIP worlds built ahead (prompts rendered once)."""

    databases: Databases
    labs: Labs


@pytest.fixture(scope="session")
def sip_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SipSession]:
    from sip_world import Databases, Labs, SipWorld

    prompts = tmp_path_factory.mktemp("sip-prompts")

    def make(stack: Any, data_dir: Path) -> SipWorld:
        world = SipWorld(stack, data_dir, prompts=prompts)
        try:
            world.warm(PROMPTS)
            _agents(world)
        except BaseException:
            world.close()
            raise
        return world

    session = SipSession(Databases(tmp_path_factory.mktemp("sip-db"), PG_URL),
                         Labs(tmp_path_factory.mktemp("sip-labs"), make))  # fmt: skip
    yield session
    try:
        session.labs.close()
    finally:
        session.databases.close()


def test_inbound_answered_with_ivr_digit_then_wrap_up(rig: Harness) -> None:
    ref = rig.world.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id, presses="1")
    rig.driver.answer(ref)
    rig.driver.play(ref, "welcome")
    rig.driver.collect_digits(ref, max_digits=1, timeout_s=5)
    rig.wait(rig.world.key_s + 0.5)
    rig.settle(lambda: rig.call(ref).digits == "1")
    assert rig.call(ref).digits == "1"
    rig.queue(ref, "orders")
    rig.wait(1.5)
    rig.driver.route_to_agent(ref, "sato")
    rig.wait(1.5)  # sato answers after 1 s
    rig.settle(lambda: rig.call(ref).state == "connected")
    assert rig.call(ref).state == "connected"
    rig.wait(1.5)
    rig.driver.hangup(ref)
    rig.settle(lambda: rig.call(ref).state != "connected")
    call = rig.call(ref)
    assert call.state == "wrap_up"
    with unit_of_work(rig.factory) as s:
        calls.finish_wrap_up(s, rig.actor, call.id, "受注", rig.clock.now())
    cdr = rig.cdr(ref)
    assert (cdr.final_state, cdr.agent, cdr.disposition) == ("ended", "sato", "受注")
    assert (cdr.queue_seconds, cdr.ring_seconds, cdr.talk_seconds) == (rig.approx(1.5), rig.approx(1), rig.approx(2))


def test_inbound_abandoned_in_queue(rig: Harness) -> None:
    ref = rig.world.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id, patience=1)
    rig.driver.answer(ref)
    rig.queue(ref, "orders")
    rig.wait(1.7)
    rig.settle(lambda: rig.has_cdr(ref))
    assert rig.call(ref).state == "abandoned"
    assert rig.cdr(ref).end_cause == "caller_abandoned"


def test_inbound_transferred_blind_to_another_agent(rig: Harness) -> None:
    ref = rig.world.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id)
    rig.driver.route_to_agent(ref, "sato")
    rig.wait(1.5)
    rig.driver.transfer(ref, "suzuki")
    rig.wait(1.5)  # suzuki answers after 1 s
    rig.settle(lambda: rig.call(ref).agent == "suzuki" and rig.call(ref).state == "connected")
    call = rig.call(ref)
    assert (call.state, call.agent, call.transferred_to) == ("connected", "suzuki", "suzuki")


def _transfer_steps(events: list[DriverEvent], ref: str) -> list[tuple[Any, ...]]:
    """What a transfer did to a call, from the driver's events: who the caller talks to, hold, the consultation
    (target, state, cause), the transfer, the end."""
    steps: list[tuple[Any, ...]] = []
    for event in list(events):
        if event.call_ref != ref:
            continue
        match event:
            case Bridged(agent=agent):
                steps.append(("bridged", agent))
            case HoldChanged(on_hold=on):
                steps.append(("hold", on))
            case Consult(target=target, state=state, cause=cause):
                steps.append(("consult", target, state.value, cause.value if cause else None))
            case Transferred(target=target, attended=attended):
                steps.append(("transferred", target, attended))
            case Ended(cause=cause):
                steps.append(("ended", cause.value))
    return steps


CONSULTED = [("bridged", "sato"), ("hold", True), ("consult", "suzuki", "ringing", None),
             ("consult", "suzuki", "connected", None)]  # fmt: skip


def _sato_consults_suzuki(rig: Harness, events: list[DriverEvent]) -> tuple[str, datetime]:
    """A caller talks to sato, who consults suzuki (the caller holds) until suzuki answers: the call's reference,
    and when the consultation started."""
    ref = rig.world.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id)
    rig.driver.route_to_agent(ref, "sato")
    rig.wait(1.5)
    rig.settle(lambda: rig.call(ref).state == "connected")
    consulted_at = rig.clock.now()
    rig.driver.consult(ref, "suzuki")
    rig.wait(1.5)  # suzuki answers after 1 s
    rig.settle(lambda: _transfer_steps(events, ref) == CONSULTED)
    assert _transfer_steps(events, ref) == CONSULTED
    call = rig.call(ref)
    assert (call.state, call.agent, call.held_since is not None) == ("connected", "sato", True)
    if sip := rig.sip():
        assert sip.holding(ref), "the caller hears the hold music"
        assert sip.consulting("sato", "suzuki"), "sato and suzuki talk, and the caller does not hear them"
    return ref, consulted_at


def test_inbound_transferred_attended_after_a_consultation(rig: Harness) -> None:
    events = rig.driver_events()
    ref, consulted_at = _sato_consults_suzuki(rig, events)
    held_s = (rig.clock.now() - consulted_at).total_seconds()  # sim: 1.5 s; SIP: and the audio checks
    rig.driver.complete_transfer(ref)
    rig.settle(lambda: ("hold", False) in _transfer_steps(events, ref) and rig.call(ref).held_since is None)
    assert _transfer_steps(events, ref) == [
        *CONSULTED, ("transferred", "suzuki", True), ("bridged", "suzuki"), ("hold", False),
    ]  # fmt: skip
    call = rig.call(ref)
    assert (call.state, call.agent, call.transferred_to, call.held_since) == ("connected", "suzuki", "suzuki", None)
    if sip := rig.sip():
        assert sip.talking(ref, "suzuki"), "the caller and suzuki hear each other"
        rig.settle(lambda: not sip.on_phone("sato"))
        assert not sip.on_phone("sato"), "sato has left the call"
    rig.wait(1)
    rig.driver.hangup(ref)
    rig.settle(lambda: rig.call(ref).state != "connected")
    assert rig.call(ref).state == "wrap_up"  # suzuki's notes
    assert rig.transitions(ref) == [
        ("offered", None), ("ringing", "sato"), ("connected", "sato"), ("connected", "suzuki"), ("wrap_up", None),
    ]  # fmt: skip
    cdr = rig.wrap_up(ref)
    assert (cdr.final_state, cdr.agent, cdr.disposition) == ("ended", "suzuki", "受注")
    assert cdr.hold_seconds == rig.approx(held_s)  # the consultation


def test_a_cancelled_consultation_puts_the_caller_back_with_the_first_agent(rig: Harness) -> None:
    events = rig.driver_events()
    ref, _ = _sato_consults_suzuki(rig, events)
    rig.driver.cancel_transfer(ref)
    rig.settle(lambda: ("hold", False) in _transfer_steps(events, ref))
    assert _transfer_steps(events, ref) == [*CONSULTED, ("consult", "suzuki", "ended", "normal"), ("hold", False)]
    call = rig.call(ref)
    assert (call.state, call.agent, call.transferred_to, call.held_since) == ("connected", "sato", None, None)
    if sip := rig.sip():
        assert sip.talking(ref, "sato"), "the caller and sato hear each other again"
        rig.settle(lambda: not sip.on_phone("suzuki"))
        assert not sip.on_phone("suzuki"), "suzuki's phone was hung up"


def test_a_consulted_agent_who_hangs_up_puts_the_caller_back_with_the_first_agent(rig: Harness) -> None:
    events = rig.driver_events()
    ref, _ = _sato_consults_suzuki(rig, events)
    rig.world.consulted_agent_hangs_up(ref)
    rig.settle(lambda: ("hold", False) in _transfer_steps(events, ref))
    assert _transfer_steps(events, ref) == [*CONSULTED, ("consult", "suzuki", "ended", "normal"), ("hold", False)]
    call = rig.call(ref)
    assert (call.state, call.agent, call.held_since) == ("connected", "sato", None)
    if sip := rig.sip():
        assert sip.talking(ref, "sato"), "the caller and sato hear each other again"
    rig.driver.complete_transfer(ref)  # too late: nobody to hand the caller to
    rig.wait(0.5)
    assert _transfer_steps(events, ref)[-1] == ("hold", False)
    assert rig.call(ref).agent == "sato"


def test_a_caller_who_hangs_up_during_a_consultation_ends_the_call_and_the_consultation(rig: Harness) -> None:
    events = rig.driver_events()
    ref, _ = _sato_consults_suzuki(rig, events)
    rig.world.caller_hangs_up(ref)
    rig.settle(lambda: rig.call(ref).state != "connected" and ("ended", "normal") in _transfer_steps(events, ref))
    assert _transfer_steps(events, ref) == [*CONSULTED, ("consult", "suzuki", "ended", "normal"), ("ended", "normal")]
    call = rig.call(ref)
    assert (call.state, call.agent, call.transferred_to) == ("wrap_up", "sato", None)  # sato's notes
    if sip := rig.sip():
        rig.settle(lambda: not sip.on_phone("suzuki") and not sip.on_phone("sato"))
        assert not sip.on_phone("suzuki"), "the consultation leg was torn down"
        assert not sip.on_phone("sato")
    cdr = rig.wrap_up(ref)
    assert (cdr.final_state, cdr.agent, cdr.end_cause) == ("ended", "sato", "normal")
    assert cdr.hold_seconds > 0  # held from the consultation to the hang-up


def test_a_call_hung_up_by_the_cti_during_a_consultation_ends_it_without_a_resume(rig: Harness) -> None:
    events = rig.driver_events()
    ref, _ = _sato_consults_suzuki(rig, events)
    rig.driver.hangup(ref)  # e.g. the desktop's hang-up button
    rig.settle(lambda: ("ended", "normal") in _transfer_steps(events, ref))
    assert _transfer_steps(events, ref) == [*CONSULTED, ("consult", "suzuki", "ended", "normal"), ("ended", "normal")]
    assert (rig.call(ref).state, rig.call(ref).agent) == ("wrap_up", "sato")
    if sip := rig.sip():
        rig.settle(lambda: not sip.on_phone("suzuki") and not sip.on_phone("sato"))
        assert not sip.on_phone("suzuki") and not sip.on_phone("sato")


def test_a_consultation_with_a_phone_that_is_not_registered_ends_at_once(rig: Harness) -> None:
    if rig.world.name == "sim":
        pytest.skip("every phone of the simulator can be reached (an unknown one answers after 2 s)")
    events = rig.driver_events()
    ref = rig.world.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id)
    rig.driver.route_to_agent(ref, "sato")
    rig.wait(1.5)
    rig.settle(lambda: rig.call(ref).state == "connected")
    rig.driver.consult(ref, "nobody")  # not registered: Kamailio answers 404
    rig.settle(lambda: ("hold", False) in _transfer_steps(events, ref))
    assert _transfer_steps(events, ref) == [
        ("bridged", "sato"), ("hold", True), ("consult", "nobody", "ringing", None),
        ("consult", "nobody", "ended", "invalid_number"), ("hold", False),
    ]  # fmt: skip
    assert (rig.call(ref).agent, rig.call(ref).held_since) == ("sato", None)
    if sip := rig.sip():
        assert sip.talking(ref, "sato"), "the caller is back with sato"


@pytest.mark.parametrize(("outcome", "state"), [("answer", "connected"), ("no_answer", "no_answer"), ("busy", "busy")])
def test_outbound_outcomes(rig: Harness, outcome: str, state: str) -> None:
    rig.world.set_number("09011112222", outcome, ring_seconds=1)
    ref = rig.driver.originate("09011112222", caller_id="03-5555-0000", tenant_id=rig.actor.tenant_id)
    rig.wait(rig.world.no_answer_s + 0.7 if outcome == "no_answer" else 1.7)  # answered after 1 s, busy at once
    rig.settle(lambda: rig.call(ref).state == state)
    assert rig.call(ref).state == state


def test_a_number_written_with_separators_is_dialled(rig: Harness) -> None:
    """A number as people write it (a callback to a number typed in, a campaign's list): its digits are dialled."""
    rig.world.set_number("090-1111-2222", "answer", ring_seconds=1)
    ref = rig.driver.originate("090-1111-2222", caller_id="03-5555-0000", tenant_id=rig.actor.tenant_id)
    rig.wait(1.7)
    rig.settle(lambda: rig.call(ref).state == "connected")
    assert rig.call(ref).state == "connected"


def _pop_for(rig: Harness, ref: str) -> dict[str, Any]:
    """The card the agent's phone would pop for this call (what the event stream sends with agent.ringing)."""
    event = Event("agent.ringing", rig.actor.tenant_id, {"call_id": rig.call(ref).id, "agent": "sato"})
    return stream.screen_pop_for(rig.factory, Actor(tenant_id=rig.actor.tenant_id, username="sato"), event)


def _customer(rig: Harness, name: str, number: str) -> int:
    with unit_of_work(rig.factory) as s:
        return customers.create_customer(s, rig.actor, CustomerCreate(name=name, phones=[{"number": number}])).id


def test_the_screen_pop_shows_the_other_party_by_direction(rig: Harness) -> None:
    """Inbound: the caller's card. Outbound (a callback, a campaign): the card of the number we dialled, never
    the center's own number (the caller id), even when someone saved that number as a customer."""
    _customer(rig, "受付 窓口", CENTER_NUMBER)  # the center's own number typed in as a customer
    caller_id = _customer(rig, "山田 花子", CALLER)
    inbound = rig.world.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id)
    rig.settle(lambda: rig.call(inbound).state is not None)
    pop = _pop_for(rig, inbound)
    assert (pop["known"], pop["customer"]["id"], pop["phone"]["e164"]) == (True, caller_id, CALLER_E164)
    rig.driver.answer(inbound)
    rig.driver.hangup(inbound)

    rig.world.set_number("090-1111-2222", "answer", ring_seconds=1)
    unknown = rig.driver.originate("090-1111-2222", caller_id=CENTER_NUMBER, tenant_id=rig.actor.tenant_id)
    rig.settle(lambda: rig.call(unknown).state is not None)
    pop = _pop_for(rig, unknown)
    assert (pop["known"], pop["customer"], pop["phone"]["e164"]) == (False, None, "+819011112222")

    saved_later = _customer(rig, "鈴木 一郎", "090-1111-2222")  # saved while we were calling them
    pop = _pop_for(rig, unknown)
    assert (pop["known"], pop["customer"]["id"], pop["phone"]["e164"]) == (True, saved_later, "+819011112222")
    rig.wait(1.7)  # answered after 1 s
    rig.settle(lambda: rig.call(unknown).state == "connected")
    rig.driver.hangup(unknown)


def test_recording_started_paused_and_resumed(rig: Harness) -> None:
    ref = rig.world.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id)
    rig.driver.route_to_agent(ref, "sato")
    rig.wait(1.5)
    rig.driver.record(ref, RecordingState.STARTED)
    rig.driver.record(ref, RecordingState.PAUSED)  # the caller reads out a card number
    rig.settle(lambda: rig.call(ref).recording_state == "paused")
    call = rig.call(ref)
    assert (call.recording_state, call.recording_ref) == ("paused", rig.recording_ref(ref))
    rig.driver.record(ref, RecordingState.RESUMED)
    rig.settle(lambda: rig.call(ref).recording_state == "resumed")
    rig.driver.hangup(ref)
    rig.settle(lambda: rig.call(ref).state != "connected")
    assert rig.call(ref).state == "wrap_up"
    assert rig.call(ref).recording_state == "resumed"


def test_a_restart_mid_call_loses_no_cdr(rig: Harness) -> None:
    """The process dies with calls up; a new one (new driver, empty memory) ends them from the database."""
    talking = rig.world.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id)
    rig.driver.route_to_agent(talking, "sato")
    waiting = rig.world.incoming(ani="06-6123-4567", dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id)
    rig.queue(waiting, "orders")
    rig.wait(1.5)  # sato answered at 1 s
    rig.settle(lambda: rig.call(talking).state == "connected")
    fresh = rig.world.restarted_driver()  # knows no calls: the old ones are gone with the process
    with unit_of_work(rig.factory) as s:
        lost = calls.recover(s, fresh.name, fresh.live_calls(), rig.clock.now())
    assert {c.ref for c in lost} == {talking, waiting}
    assert rig.call(talking).state == "wrap_up"  # closed by the agent's notes, then its CDR is written
    waited = rig.cdr(waiting)
    assert (waited.final_state, waited.end_cause) == ("failed", "system_restart")  # dropped by us: counted


def test_a_caller_hangs_up_after_their_talk_time(rig: Harness) -> None:
    ref = rig.world.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id, talk_s=2)
    rig.driver.route_to_agent(ref, "sato")
    rig.wait(1 + 1)  # sato answered at 1 s: the caller talks until 3 s
    assert rig.call(ref).state == "connected"
    rig.wait(1.5)
    rig.settle(lambda: rig.call(ref).state != "connected")
    call = rig.call(ref)
    assert call.state == "wrap_up"
    assert call.connected_at is not None and call.ended_at is not None
    assert Decimal(str((call.ended_at - call.connected_at).total_seconds())) == rig.approx(2)  # from the answer


def test_starting_the_app_reconciles_calls_left_by_the_previous_process(rig: Harness, tmp_path: Path) -> None:
    """The real restart path: the app's start-up ends calls its (new) driver does not have."""
    from fastapi.testclient import TestClient

    from kakehashi.app import create_app

    talking = rig.world.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id)
    rig.driver.route_to_agent(talking, "sato")
    ringing = rig.world.incoming(ani="06-6123-4567", dnis=CENTER_NUMBER, tenant_id=rig.actor.tenant_id)
    rig.world.set_agent("suzuki", answers=False)
    rig.driver.route_to_agent(ringing, "suzuki")
    rig.wait(1.5)  # sato answered at 1 s
    rig.settle(lambda: rig.call(talking).state == "connected")
    app = create_app(rig.world.app_settings(tmp_path / "app"), session_factory=rig.factory)
    with TestClient(app):
        assert rig.call(talking).state == "wrap_up"
        dropped = rig.cdr(ringing)
        assert (dropped.final_state, dropped.end_cause) == ("failed", "system_restart")


# -- inbound routing: the call controller on top of the driver ----------------------------------------------

CARD_NUMBER = "4111111111111234"
PIN = "9876"
#: Times as ``repr`` and ISO 8601 write them (their digits are not the caller's).
_WITHOUT_TIMES = re.compile(r"datetime\.datetime\([^)]*\)|\d{4}-\d{2}-\d{2}[T ][0-9:.]+(?:[+-]\d{2}:?\d{2}|Z)?")
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
#: Every text a test plays: rendered (SIP: Open JTalk) before the tests, so that no test's timing includes it.
PROMPTS = ["welcome", VOICEMAIL_PROMPT, CALLBACK_CONFIRMED] + [
    text for node in ORDER_LINE.nodes.values() for text in (getattr(node, "prompt", None),) if isinstance(text, str)
]


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
        return self.rig.world.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=self.rig.actor.tenant_id, **caller)

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
        QueueRules("orders", wrap_up_s=1), QueueRules("support", wrap_up_s=1),
        members={"sato": {"orders": 1}, "suzuki": {"support": 1}}, flow=ORDER_LINE,
    )  # fmt: skip
    center.log_in("sato", "suzuki")
    ref = center.dial(presses="2", talk_s=1.5)
    rig.wait(rig.world.key_s + 1 + 0.5)  # the key, then suzuki's phone rings 1 s
    rig.settle(lambda: center.agent("suzuki") is AgentState.ON_CALL)  # the controller took the bridge in
    call = rig.call(ref)
    assert (call.state, call.digits, call.queue, call.agent) == ("connected", "2", "support", "suzuki")
    assert (center.agent("suzuki"), center.agent("sato")) == (AgentState.ON_CALL, AgentState.AVAILABLE)
    rig.wait(1.5 + 1 + 0.5)  # the caller hangs up after 1.5 s of talk; support's wrap-up is 1 s
    rig.settle(lambda: center.journal.agent_states.get("suzuki", [])[-1:] == ["available"])  # the wrap-up is over
    cdr = rig.cdr(ref)
    assert (cdr.final_state, cdr.queue, cdr.agent, cdr.disposition) == ("ended", "support", "suzuki", "自動完了")
    assert center.journal.agent_states == {
        "sato": ["available"],
        "suzuki": ["available", "ringing", "on_call", "wrap_up", "available"],
    }
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


def test_an_agent_who_lets_it_ring_goes_missed_and_the_next_agent_rings(rig: Harness, open_center: OpenCenter) -> None:
    orders = QueueRules("orders", ring_timeout_s=2, wrap_up_s=1)
    center = open_center(orders, members={"sleepy": {"orders": 1}, "awake": {"orders": 1}})
    rig.world.set_agent("sleepy", answers=False)
    rig.world.set_agent("awake", answer_after=1)
    center.log_in("sleepy")
    rig.wait(0.2)
    center.log_in("awake")  # sleepy has been idle longer: their phone rings first
    ref = center.dial(talk_s=1)
    rig.wait(1)
    assert (rig.call(ref).state, rig.call(ref).agent) == ("ringing", "sleepy")
    assert center.agent("sleepy") is AgentState.RINGING
    rig.wait(2.2)  # 2 s of ringing, then awake's phone rings for 1 s
    rig.settle(lambda: ("call.bridged", "awake") in center.events(ref))
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
    rig.wait(1 + 1)  # talk, then wrap-up
    rig.settle(lambda: rig.has_cdr(ref))
    cdr = rig.cdr(ref)
    assert (cdr.final_state, cdr.agent, cdr.ring_seconds) == ("ended", "awake", rig.approx(2 + 1))  # both rings


def test_a_caller_who_waits_too_long_overflows_to_voicemail(
    rig: Harness, open_center: OpenCenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routing_deflections, "MAX_MESSAGE_S", 2.0)  # the longest message (60 s in service)
    orders = QueueRules("orders", max_wait_s=1, overflow_action="voicemail")
    center = open_center(orders, members={"sato": {"orders": 1}})
    ref = center.dial()  # nobody is logged in
    rig.wait(1.5)
    rig.settle(lambda: rig.call(ref).recording_state == "started")
    call = rig.call(ref)
    assert (call.state, call.queue, call.recording_state) == ("voicemail", "orders", "started")
    assert rig.world.prompts_played(ref)[-1] == VOICEMAIL_PROMPT
    rig.wait(1.5)  # the system ends the message
    rig.settle(lambda: ("call.ended", None) in center.events(ref))
    cdr = rig.cdr(ref)
    assert (cdr.final_state, cdr.queue, cdr.recording_ref) == ("voicemail", "orders", rig.recording_ref(ref))
    (message,) = center.rows(Voicemail)
    assert (message.call_ref, message.queue, message.number_e164) == (ref, "orders", CALLER_E164)
    assert center.journal.agent_states == {}  # no agent was bothered
    assert [name for name, _ in center.events(ref)] == [
        "call.offered", "call.answered", "call.queued", "call.voicemail", "call.recording", "call.ended",
    ]  # fmt: skip


def test_a_callback_request_is_dialled_back_and_put_through_to_an_agent(rig: Harness, open_center: OpenCenter) -> None:
    center = open_center(QueueRules("orders", wrap_up_s=0), QueueRules("support"), members={"sato": {"orders": 1}},
                         flow=ORDER_LINE)  # fmt: skip
    rig.world.set_number(CALLER, "answer", ring_seconds=0.5)  # the customer's phone, when we call back
    ref = center.dial(presses="31")  # "callback", then "yes"
    rig.wait(2 * rig.world.key_s + 0.5)
    rig.settle(lambda: rig.has_cdr(ref), timeout=15)  # a real line drops once the confirmation was heard
    assert rig.cdr(ref).final_state == "callback"  # the caller heard the confirmation and the line dropped
    (request,) = center.rows(Callback)
    assert (request.origin_call_ref, request.queue, request.status) == (ref, "orders", "pending")
    center.log_in("sato")  # an agent is free: we dial the customer, then ring the agent
    rig.wait(0.5 + 1 + 0.7)
    rig.settle(lambda: center.journal.agent_states.get("sato", [])[-1:] == ["on_call"])  # the controller is done
    (leg,) = [c for c in center.rows(Call) if c.direction == "outbound"]
    assert (try_normalize_phone(leg.dnis), leg.ani_raw, leg.state, leg.agent) == (
        CALLER_E164, CENTER_NUMBER_E164, "connected", "sato",
    )  # fmt: skip
    pop = _pop_for(rig, leg.ref)  # sato sees the customer called back, not the center's number
    assert (pop["known"], pop["phone"]["e164"]) == (False, CALLER_E164)
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
    ref = center.dial(presses="1", patience=2)  # nobody is logged in
    rig.wait(2.7)
    rig.settle(lambda: rig.has_cdr(ref) and center.controller.engine(rig.actor.tenant_id).waiting_count("orders") == 0)
    cdr = rig.cdr(ref)
    assert (cdr.final_state, cdr.end_cause, cdr.queue, cdr.queue_seconds) == (
        "abandoned", "caller_abandoned", "orders", rig.approx(2 - rig.world.key_s),  # queued after the key
    )  # fmt: skip
    center.log_in("sato")
    rig.wait(0.5)
    assert center.journal.agent_states == {"sato": ["available"]}  # nobody left waiting for them
    assert center.controller.engine(rig.actor.tenant_id).waiting_count("orders") == 0


def test_sensitive_digits_are_kept_off_the_recording_and_stored_only_masked(
    rig: Harness, open_center: OpenCenter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    center = open_center(QueueRules("orders", wrap_up_s=1), QueueRules("support"), members={"sato": {"orders": 1}},
                         flow=ORDER_LINE)  # fmt: skip
    center.log_in("sato")
    ref = center.dial(presses="4" + CARD_NUMBER + PIN, talk_s=1.5)
    rig.wait((1 + 16 + 4) * rig.world.key_s + 1 + 1)  # the keys, then sato's phone rings 1 s
    rig.settle(lambda: rig.call(ref).state == "connected")
    call = rig.call(ref)
    assert (call.state, call.agent) == ("connected", "sato")  # the flow went on as usual
    assert center.journal.exits[ref].variables == {"card": "************1234", "pin": "****"}
    # Recording paused from the card number's prompt to after the PIN: the recording has only the menu key.
    recording = [e.state.value for e in center.driver_events if isinstance(e, RecordingChanged)]
    assert recording == ["started", "paused", "resumed"]
    assert rig.world.keys_on_recording(ref) == "4"
    assert (call.digits, call.recording_state) == ("4", "resumed")
    rig.wait(0.5 + 1 + 1)  # the rest of the talk, the wrap-up: the call is over and its CDR written
    rig.settle(lambda: rig.has_cdr(ref))
    assert rig.cdr(ref).final_state == "ended"
    secrets = (CARD_NUMBER, PIN)

    def leaks(text: str) -> bool:  # times left out: a PIN of 9876 is in the microseconds of 23:05:48.419876
        return any(secret in _WITHOUT_TIMES.sub("", text) for secret in secrets)

    assert not [e for e in center.published if leaks(repr(e.payload))]
    assert not [e for e in center.driver_events if leaks(repr(e))]
    assert not [r for r in caplog.records if leaks(r.getMessage())]
    with rig.factory() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)):
                assert not leaks(repr(row)), f"{table.name}: {row}"
