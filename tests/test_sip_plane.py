"""rtpengine's media plane (ADR 0024) with real processes: Kamailio, rtpengine, the plane and baresip phones.

The call-flow contract runs on this engine too (``KAKEHASHI_TEST_SIP_ENGINE=rtpengine``); here are what only this
engine has: the two-channel recording, the customer's media address that never changes while the CTI side does,
and a signalling process that dies — its calls end, both phones are hung up by the driver, the next call works;
answering-machine detection on outbound calls placed with it (``plane_amd``: the answer comes with the verdict).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from amd_voices import machine_wav, person_wav
from kakehashi.campaigns.schemas import AmdSettings
from kakehashi.telephony.drivers.sip.driver import SipDriver
from kakehashi.telephony.drivers.sip.lab import Phone, SipStack
from kakehashi.telephony.port import (
    AgentRinging,
    Answered,
    Bridged,
    Direction,
    DriverEvent,
    DtmfReceived,
    EndCause,
    Ended,
    Offered,
    RecordingState,
)

pytestmark = pytest.mark.sip
CENTER = "0120999999"
CUSTOMER_HZ, AGENT_HZ = 440.0, 1000.0


class Plane:
    """A stack on the media plane, a driver whose IVR answers, records, plays a prompt and sends the caller to
    ``agent1`` at the first key."""

    def __init__(self, work: Path) -> None:
        self.stack = SipStack(work / "lab", cti_engine="rtpengine").start()
        self.events: list[DriverEvent] = []
        self.seen = threading.Condition()
        self.driver = SipDriver(self.stack.cti_options(work / "cti"), tenant_of=lambda dnis: 1)
        self.driver.subscribe(self._on)

    def _on(self, event: DriverEvent) -> None:
        if isinstance(event, Offered) and event.direction is Direction.INBOUND:
            self.driver.answer(event.call_ref)
            self.driver.record(event.call_ref, RecordingState.STARTED)
            self.driver.play(event.call_ref, "お電話ありがとうございます。")
        elif isinstance(event, DtmfReceived):
            self.driver.route_to_agent(event.call_ref, "agent1")
        with self.seen:
            self.events.append(event)
            self.seen.notify_all()

    def wait_for(self, check: Callable[[DriverEvent], bool], timeout: float = 20.0) -> DriverEvent:
        with self.seen:
            deadline = time.monotonic() + timeout
            while True:
                found = next((e for e in self.events if check(e)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                assert left > 0, f"no such event; seen: {[type(e).__name__ for e in self.events]}"
                self.seen.wait(left)

    def close(self) -> None:
        self.driver.close()
        self.stack.stop()


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[Plane]:
    world = Plane(tmp_path)
    try:
        yield world
    finally:
        world.close()


def _bridged_call(plane: Plane) -> tuple[str, Phone, Phone]:
    customer = plane.stack.phone("0312345678", tone_hz=CUSTOMER_HZ)
    agent = plane.stack.phone("agent1", auto_answer=True, tone_hz=AGENT_HZ)
    customer.wait_registered()
    agent.wait_registered()
    customer.dial(CENTER)
    customer.wait_for("CALL_ESTABLISHED", timeout=20)
    ref = plane.wait_for(lambda e: isinstance(e, Offered)).call_ref
    assert customer.wait_for_audio(min_rms=0.01, min_seconds=0.5, timeout=20) > 0.01  # the prompt
    customer.send_dtmf("1")
    plane.wait_for(lambda e: isinstance(e, AgentRinging) and e.call_ref == ref)
    plane.wait_for(lambda e: isinstance(e, Bridged) and e.call_ref == ref)
    agent.wait_for("CALL_ESTABLISHED", timeout=20)
    return ref, customer, agent


def test_ivr_then_agent_both_ways_and_a_two_channel_recording(plane: Plane) -> None:
    ref, customer, agent = _bridged_call(plane)
    media = plane.stack.rtpengine_query(f"kk-{ref}")
    assert agent.wait_for_audio(min_rms=0.1, min_seconds=1.0, timeout=20) > 0.1
    assert customer.wait_for_audio(min_rms=0.1, min_seconds=1.0, timeout=20) > 0.1
    # One rtpengine call, two sides; the customer's side kept its port from the IVR to the agent.
    assert len(media["tags"]) == 2
    customer.hangup()
    plane.wait_for(lambda e: isinstance(e, Ended) and e.call_ref == ref)
    agent.wait_for("CALL_CLOSED", timeout=20)
    path = plane.driver.recording_path(ref)
    deadline = time.monotonic() + 20
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    with wave.open(str(path)) as wav:
        assert wav.getnchannels() == 2
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2).astype(float)
    left, right = frames[:, 0], frames[:, 1]
    assert _dominant_hz(left) == pytest.approx(CUSTOMER_HZ, rel=0.05), "the customer on the left"
    talking = np.flatnonzero(np.abs(right) > 500)
    assert len(talking) > 4000, "the agent's side was recorded"
    last = right[talking[-1] - 4000 : talking[-1]]  # half a second of the agent, in one piece
    assert _dominant_hz(last) == pytest.approx(AGENT_HZ, rel=0.05), "the agent on the right"
    assert not list(plane.stack.recording_dir.glob("pcaps/*.pcap")), "the pcaps are gone once converted"


def test_a_plane_that_dies_hangs_up_both_phones_and_the_next_call_works(plane: Plane) -> None:
    ref, customer, agent = _bridged_call(plane)
    (pid,) = plane.driver.worker_pids()
    os.kill(pid, signal.SIGKILL)
    ended = plane.wait_for(lambda e: isinstance(e, Ended) and e.call_ref == ref)
    assert isinstance(ended, Ended) and ended.cause is EndCause.FAILED
    customer.wait_for("CALL_CLOSED", timeout=20)  # the driver's BYE
    agent.wait_for("CALL_CLOSED", timeout=20)
    deadline = time.monotonic() + 30
    while (not plane.driver.worker_pids() or plane.driver.worker_pids() == [pid]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert plane.driver.worker_pids() and plane.driver.worker_pids() != [pid], "the plane was started again"
    assert plane.driver._workers[0].ready.wait(30), "the new plane said ready"  # its SIP port is bound then
    customer.dial(CENTER)
    customer.wait_for("CALL_ESTABLISHED", timeout=20)
    second = plane.wait_for(lambda e: isinstance(e, Offered) and e.call_ref != ref).call_ref
    customer.hangup()
    plane.wait_for(lambda e: isinstance(e, Ended) and e.call_ref == second)


def _dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples - samples.mean()))
    return float(np.fft.rfftfreq(len(samples), 1 / 8000)[int(np.argmax(spectrum))])


def test_when_rtpengine_dies_every_call_ends_as_failed_and_both_phones_are_hung_up(plane: Plane) -> None:
    ref, customer, agent = _bridged_call(plane)
    rtpengine = plane.stack._rtpengine  # the lab's own process: killed as a crash would
    assert rtpengine is not None
    os.kill(rtpengine.pid, signal.SIGKILL)
    ended = plane.wait_for(lambda e: isinstance(e, Ended) and e.call_ref == ref, timeout=30)
    assert isinstance(ended, Ended) and ended.cause is EndCause.FAILED
    customer.wait_for("CALL_CLOSED", timeout=20)
    agent.wait_for("CALL_CLOSED", timeout=20)


def test_outbound_calls_placed_with_amd_are_answered_with_the_verdict_and_the_subscription_is_removed(
    plane: Plane, tmp_path: Path
) -> None:
    voices = tmp_path / "voices"
    phones = {
        "0311110001": plane.stack.phone("0311110001", audio_file=machine_wav(voices), auto_answer=True),
        "0311110002": plane.stack.phone("0311110002", audio_file=person_wav(voices), auto_answer=True),
        "0311110003": plane.stack.phone("0311110003", tone_hz=CUSTOMER_HZ, auto_answer=True),
    }
    for phone in phones.values():
        phone.wait_registered()
    amd = AmdSettings(enabled=True).detector()  # what a campaign sends: the Japanese set
    machine = plane.driver.originate("0311110001", caller_id=CENTER, tenant_id=1, amd=amd)
    person = plane.driver.originate("0311110002", caller_id=CENTER, tenant_id=1, amd=amd)
    plain = plane.driver.originate("0311110003", caller_id=CENTER, tenant_id=1)  # no detection: answered at once

    def answered(ref: str) -> Answered:
        event = plane.wait_for(lambda e: isinstance(e, Answered) and e.call_ref == ref, timeout=30)
        assert isinstance(event, Answered)
        return event

    assert (answered(plain).by, answered(plain).amd) == ("remote", None)
    assert (answered(machine).by, answered(machine).amd) == ("remote", "machine")
    assert (answered(person).by, answered(person).amd) == ("remote", "human")
    order = [e.call_ref for e in plane.events if isinstance(e, Answered)]
    assert order.index(plain) < order.index(person)  # the person's answer waited for the detector
    for ref in (machine, person):  # the analysis's subscription is gone: nobody but the CTI side hears the customer
        tags = plane.stack.rtpengine_query(f"kk-{ref}")["tags"]
        subscribers = {s["tag"] for tag in tags.values() for s in tag.get("subscribers", [])}
        assert any(name.startswith("amd-") for name in tags), "the detector was subscribed"
        assert not [name for name in subscribers if name.startswith("amd-")]
        assert not [name for name, tag in tags.items() if name.startswith("amd-") and tag.get("subscriptions")]
    for ref in (machine, person, plain):
        plane.driver.hangup(ref)
        plane.wait_for(lambda e, ref=ref: isinstance(e, Ended) and e.call_ref == ref)  # type: ignore[misc]
    for phone in phones.values():
        phone.wait_for("CALL_CLOSED", timeout=20)
