"""Silent monitor (``telephony.port.Monitoring``): a supervisor's phone hears the caller and the agent, and
nobody hears the supervisor. On the simulator (events only) and on real SIP (baresip phones: what each hears).
Also, on SIP, the room a listener and a consultation need in the media worker holding the call (the worker's
four SIP dialogs; docs/telephony.md, "Capacity")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kakehashi.telephony.drivers.sim.driver import SimDriver
from kakehashi.telephony.port import Bridged, Consult, ConsultState, DriverEvent, EndCause, Ended, MonitorChanged

if TYPE_CHECKING:  # the SIP driver needs the optional ``sip`` extra
    from sip_world import SipWorld

CALLER = "03-1234-5678"
CENTER_NUMBER = "0120-444-444"


def _monitoring(events: list[DriverEvent], ref: str) -> list[tuple[str, bool] | str]:
    """A call's listeners coming and going, and its end."""
    return [
        (e.listener, e.on) if isinstance(e, MonitorChanged) else "ended"
        for e in list(events)
        if e.call_ref == ref and isinstance(e, MonitorChanged | Ended)
    ]


def test_the_simulator_reports_a_listener_on_and_off_and_ends_it_with_the_call() -> None:
    sim = SimDriver()
    sim.set_agent("sato", answer_after=1)
    sim.set_agent("kanrisha", answer_after=0.5)  # a supervisor's phone
    events: list[DriverEvent] = []
    sim.subscribe(events.append)
    ref = sim.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=1)
    sim.route_to_agent(ref, "sato")
    sim.clock.advance(1)
    sim.monitor(ref, "kanrisha")
    sim.monitor(ref, "kanrisha")  # already called: nothing more
    assert _monitoring(events, ref) == []  # it rings
    sim.clock.advance(0.5)
    assert _monitoring(events, ref) == [("kanrisha", True)]
    sim.stop_monitor(ref, "kanrisha")
    sim.stop_monitor(ref, "kanrisha")  # not listening any more: nothing more
    assert _monitoring(events, ref) == [("kanrisha", True), ("kanrisha", False)]
    sim.monitor(ref, "stranger")  # not a phone of the simulator: cannot be reached
    assert _monitoring(events, ref)[-1] == ("stranger", False)
    sim.monitor(ref, "kanrisha")
    sim.clock.advance(0.5)
    sim.caller_hangs_up(ref)  # the listener is hung up with the call, before its end
    assert _monitoring(events, ref)[-3:] == [("kanrisha", True), ("kanrisha", False), "ended"]
    sim.monitor(ref, "kanrisha")  # an ended call: nothing
    assert _monitoring(events, ref)[-1] == "ended"


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SipWorld]:
    """Phones around a SIP driver; ``@pytest.mark.parametrize("world", [n], indirect=True)``: Kamailio sends every
    call to the first of ``n`` media workers (default: the lab's number)."""
    from kakehashi.telephony.drivers.sip.lab import SipStack
    from sip_world import ENGINE, RTP_PORTS, SipWorld

    workers = getattr(request, "param", None)
    if ENGINE == "rtpengine" and workers is not None:
        pytest.skip("one signalling process on rtpengine's media plane: no worker to fill")
    stack = SipStack(tmp_path / "sip", rtp_port_count=RTP_PORTS, cti_workers=workers, cti_engine=ENGINE).start()
    try:
        world = SipWorld(stack, tmp_path / "data")
    except BaseException:
        stack.stop()
        raise
    try:
        yield world
    finally:
        world.close()


@pytest.mark.sip
def test_a_supervisor_hears_the_caller_and_the_agent_and_nobody_hears_the_supervisor(world: SipWorld) -> None:
    from sip_world import AGENT_TONE_HZ, CUSTOMER_TONE_HZ, SUPERVISOR_TONE_HZ

    events: list[DriverEvent] = []
    world.driver.subscribe(events.append)
    world.set_agent("sato", answer_after=0.5)
    world.set_agent("suzuki", answer_after=0.5)
    world.set_supervisor("kanrisha", answer_after=0.5)
    ref = world.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=1)
    world.driver.route_to_agent(ref, "sato")
    assert world.talking(ref, "sato", timeout=10)

    world.driver.monitor(ref, "kanrisha")
    assert world.until(lambda: _monitoring(events, ref) == [("kanrisha", True)], 5)
    assert world.until(lambda: world.heard("kanrisha", CUSTOMER_TONE_HZ) and world.heard("kanrisha", AGENT_TONE_HZ),
                       5), "the supervisor hears the caller and the agent"  # fmt: skip
    assert world.talking(ref, "sato"), "the caller and the agent still hear each other"
    assert world.unheard(ref, SUPERVISOR_TONE_HZ), "the caller does not hear the supervisor"
    assert world.unheard("sato", SUPERVISOR_TONE_HZ), "the agent does not hear the supervisor"

    # An attended transfer: the supervisor goes on hearing the call, now with suzuki (sato's phone is down).
    world.driver.consult(ref, "suzuki")
    assert world.until(lambda: any(isinstance(e, Consult) and e.state is ConsultState.CONNECTED for e in events), 5)
    # sato and suzuki talk before the transfer, as agents do. Completed within milliseconds of suzuki's answer, the
    # test phone (baresip 1.0.0) loses the caller: an SSRC change before its jitter buffer has started is not
    # flushed, and every later packet is "too late" (docs/telephony.md, "Test phones").
    assert world.consulting("sato", "suzuki"), "sato and suzuki hear each other, not the caller"
    world.driver.complete_transfer(ref)
    assert world.until(lambda: any(isinstance(e, Bridged) and e.agent == "suzuki" for e in events), 5)
    assert world.until(lambda: not world.on_phone("sato"), 5)
    assert world.talking(ref, "suzuki"), "the caller and suzuki hear each other after the transfer"
    assert world.until(lambda: world.heard("kanrisha", CUSTOMER_TONE_HZ) and world.heard("kanrisha", AGENT_TONE_HZ),
                       5), "the supervisor hears the caller and suzuki"  # fmt: skip
    assert world.unheard(ref, SUPERVISOR_TONE_HZ) and world.unheard("suzuki", SUPERVISOR_TONE_HZ)

    world.driver.stop_monitor(ref, "kanrisha")
    assert world.until(lambda: _monitoring(events, ref) == [("kanrisha", True), ("kanrisha", False)], 5)
    assert world.until(lambda: not world.on_phone("kanrisha"), 5), "the supervisor's phone was hung up"
    assert world.talking(ref, "suzuki"), "the call goes on"

    world.driver.monitor(ref, "kanrisha")  # listening again, until the caller hangs up
    assert world.until(lambda: _monitoring(events, ref)[-1:] == [("kanrisha", True)], 5)
    world.caller_hangs_up(ref)
    assert world.until(lambda: _monitoring(events, ref)[-1:] == ["ended"], 5)
    assert _monitoring(events, ref)[-3:] == [("kanrisha", True), ("kanrisha", False), "ended"]
    assert world.until(lambda: not world.on_phone("kanrisha"), 5), "the supervisor's phone was hung up with the call"


@pytest.mark.sip
def test_a_listener_whose_phone_is_not_registered_is_off_at_once(world: SipWorld) -> None:
    events: list[DriverEvent] = []
    world.driver.subscribe(events.append)
    world.set_agent("sato", answer_after=0.5)
    ref = world.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=1)
    world.driver.route_to_agent(ref, "sato")
    assert world.until(lambda: any(isinstance(e, Bridged) for e in events), 10)
    world.driver.monitor(ref, "nobody")  # Kamailio answers 404
    assert world.until(lambda: _monitoring(events, ref) == [("nobody", False)], 5)
    assert world.talking(ref, "sato")


@pytest.mark.sip
@pytest.mark.parametrize("world", [1], indirect=True)
def test_a_worker_with_two_calls_up_has_no_room_to_consult_or_monitor_until_one_ends(world: SipWorld) -> None:
    events: list[DriverEvent] = []
    world.driver.subscribe(events.append)
    for agent in ("sato", "suzuki", "tanaka"):
        world.set_agent(agent, answer_after=0.5)
    world.set_supervisor("kanrisha", answer_after=0.5)
    first = world.incoming(ani=CALLER, dnis=CENTER_NUMBER, tenant_id=1)
    second = world.incoming(ani="06-6123-4567", dnis=CENTER_NUMBER, tenant_id=1)  # the same (only) worker
    world.driver.route_to_agent(first, "sato")
    world.driver.route_to_agent(second, "suzuki")
    assert world.talking(first, "sato", timeout=10) and world.talking(second, "suzuki", timeout=10)  # 4 dialogs

    def consult_ends(ref: str) -> list[tuple[ConsultState, EndCause | None]]:
        return [(e.state, e.cause) for e in list(events) if isinstance(e, Consult) and e.call_ref == ref]

    world.driver.consult(first, "tanaka")
    assert world.until(lambda: len(consult_ends(first)) == 2, 5)
    assert consult_ends(first) == [(ConsultState.RINGING, None), (ConsultState.ENDED, EndCause.FAILED)]
    world.driver.monitor(first, "kanrisha")
    assert world.until(lambda: _monitoring(events, first) == [("kanrisha", False)], 5)
    assert world.talking(first, "sato"), "the caller is back with sato"
    assert not world.on_phone("tanaka") and not world.on_phone("kanrisha")  # never rung

    world.caller_hangs_up(second)  # two dialogs free again
    assert world.until(lambda: _monitoring(events, second) == ["ended"], 5)
    world.wait(0.5)  # the BYEs answered: the dialogs' slots are free
    world.driver.consult(first, "tanaka")
    assert world.until(lambda: consult_ends(first)[-1:] == [(ConsultState.CONNECTED, None)], 5)
    world.driver.monitor(first, "kanrisha")  # the fourth dialog: caller, sato, tanaka, kanrisha
    assert world.until(lambda: _monitoring(events, first)[-1:] == [("kanrisha", True)], 5)
    assert world.consulting("sato", "tanaka")
