"""The simulator driver: the same events a SIP driver produces, from scripted callers, agents and numbers.

The "outside world" (callers dialling in, customers' phones, agents' phones) is configured on the driver
(``incoming``, ``set_agent``, ``set_number``); the CTI only uses the :class:`TelephonyDriver` commands.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kakehashi.kit.timers import VirtualClock
from kakehashi.telephony.port import (
    AgentRinging,
    Answered,
    Bridged,
    Consult,
    ConsultState,
    Direction,
    DriverEvent,
    DtmfReceived,
    EndCause,
    Ended,
    EventHandler,
    HoldChanged,
    MonitorChanged,
    Monitoring,
    Offered,
    RecordingChanged,
    RecordingState,
    SensitiveDtmfReceived,
    TelephonyDriver,
    Transferred,
)

#: What a dialled number does when the simulator calls it.
OUTCOMES = ("answer", "busy", "no_answer", "answering_machine", "invalid")
NO_ANSWER_TIMEOUT_S = 30.0
#: Ended calls kept for the test helpers (``prompts_played``…); older ones are forgotten.
KEEP_ENDED = 10_000


@dataclass
class SimAgent:
    answer_after: float = 2.0
    answers: bool = True


@dataclass(frozen=True)
class AmdErrors:
    """The simulated answering-machine detector: how often it takes a person for a machine (``false_machine``:
    the person is dropped, an abandon by Ofcom's count), a machine for a person (``missed_machine``: an agent gets
    it), and how long it listens before deciding (a person: their greeting and the silence after it)."""

    false_machine: float = 0.0
    missed_machine: float = 0.0
    human_decision_s: float = 2.9  # the Japanese set's mean decision times (``kakehashi bench amd``)
    machine_decision_s: float = 3.2


@dataclass
class SimNumber:
    outcome: str = "answer"
    ring_seconds: float = 8.0
    talk_s: float | None = None  # the called person hangs up this long after reaching an agent


@dataclass
class _Call:
    ref: str
    direction: Direction
    presses: str = ""
    talk_s: float | None = None  # the caller hangs up this long after reaching an agent
    connected: bool = False
    ended: bool = False
    agent: str | None = None
    ringing: set[str] = field(default_factory=set)  # agents whose phones ring for this call (ring-all: several)
    prompts: list[str] = field(default_factory=list)
    recording: RecordingState | None = None
    keys_on_recording: str = ""  # the keys pressed while the recording ran
    consult: str | None = None  # the agent consulted for an attended transfer
    consult_connected: bool = False
    listeners: dict[str, bool] = field(default_factory=dict)  # silent monitor: listener → answered


class SimDriver:
    name = "sim"

    def __init__(
        self,
        clock: VirtualClock | None = None,
        *,
        prefix: str = "sim",
        tenant_of: Callable[[str], int | None] | None = None,
        amd_errors: AmdErrors | None = None,
        seed: int | None = None,
    ) -> None:
        self.clock = clock or VirtualClock()
        self.amd_errors = amd_errors or AmdErrors()
        self._random = random.Random(seed)
        self.tenant_of = tenant_of  # whose number was dialled, as the SIP driver finds it (inbound_numbers)
        self._handlers: list[EventHandler] = []
        self._calls: dict[str, _Call] = {}
        self._agents: dict[str, SimAgent] = {}
        self._numbers: dict[str, SimNumber] = {}
        self._ids = itertools.count(1)
        self._ended: deque[str] = deque()
        self.prefix = prefix  # call references are f"{prefix}-{n}"

    # -- the outside world ------------------------------------------------------------------------------

    def set_agent(self, name: str, *, answer_after: float = 2.0, answers: bool = True) -> None:
        self._agents[name] = SimAgent(answer_after, answers)

    def set_number(self, number: str, outcome: str, *, ring_seconds: float = 8.0, talk_s: float | None = None) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        self._numbers[number] = SimNumber(outcome, ring_seconds, talk_s)

    def incoming(
        self,
        *,
        ani: str,
        dnis: str,
        tenant_id: int | None = None,
        presses: str = "",
        patience: float | None = None,
        talk_s: float | None = None,
    ) -> str:
        """A caller dials in; ``presses`` are the digits they will key when asked; with ``patience`` they hang
        up after that many seconds unless an agent answered first (an abandon); with ``talk_s`` they hang up
        that long after an agent answered (the talk part of the handle time). Without ``tenant_id`` the
        owner of the dialled number is looked up, as a real phone system's edge does; a number nobody owns
        is refused (``LookupError``)."""
        if tenant_id is None:
            tenant_id = self.tenant_of(dnis) if self.tenant_of is not None else None
            if tenant_id is None:
                raise LookupError(f"{dnis} is not in service")
        call = self._new(Direction.INBOUND, presses)
        call.talk_s = talk_s
        self._emit(
            Offered(
                call_ref=call.ref,
                at=self.clock.now(),
                direction=Direction.INBOUND,
                ani=ani,
                dnis=dnis,
                tenant_id=tenant_id,
            )
        )
        if patience is not None:
            self.clock.call_later(patience, lambda: None if call.connected else self._end(call, EndCause.NORMAL))
        return call.ref

    def caller_hangs_up(self, call_ref: str) -> None:
        self._end(self._calls[call_ref], EndCause.NORMAL)

    def prompts_played(self, call_ref: str) -> list[str]:
        return list(self._calls[call_ref].prompts)

    def keys_on_recording(self, call_ref: str) -> str:
        """The keys the recording of the call would let you hear (pressed while it was started or resumed)."""
        return self._calls[call_ref].keys_on_recording

    # -- TelephonyDriver commands ----------------------------------------------------------------------

    def subscribe(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    def answer(self, call_ref: str) -> None:
        self._emit(Answered(call_ref=call_ref, at=self.clock.now(), by="system"))

    def play(self, call_ref: str, prompt: str) -> None:
        self._calls[call_ref].prompts.append(prompt)

    def collect_digits(self, call_ref: str, *, max_digits: int, timeout_s: float, sensitive: bool = False) -> None:
        call = self._calls[call_ref]
        digits, call.presses = call.presses[:max_digits], call.presses[max_digits:]
        for i, key in enumerate(digits):  # a person needs a moment per key

            def press(key: str = key) -> None:
                if call.ended:
                    return
                if call.recording in (RecordingState.STARTED, RecordingState.RESUMED):
                    call.keys_on_recording += key
                at = self.clock.now()
                if sensitive:
                    self._emit(SensitiveDtmfReceived(call_ref=call_ref, at=at, digits=key))
                else:
                    self._emit(DtmfReceived(call_ref=call_ref, at=at, digits=key))

            self.clock.call_later(1.0 * (i + 1), press)

    def route_to_agent(self, call_ref: str, agent: str) -> None:
        call = self._calls[call_ref]
        call.agent = agent
        call.ringing.add(agent)  # routing again while ringing rings in parallel; the first to answer wins
        self._emit(AgentRinging(call_ref=call_ref, at=self.clock.now(), agent=agent))
        phone = self._agents.get(agent, SimAgent())
        if phone.answers:
            self.clock.call_later(phone.answer_after, lambda: self.answer_agent_phone(call_ref, agent))

    def park(self, call_ref: str, *, music: str | None = None) -> None:
        call = self._calls[call_ref]
        call.ringing.clear()  # agents' phones stop ringing; the caller hears music
        call.prompts.append(music or "hold-music")

    def originate(self, to: str, *, caller_id: str, tenant_id: int, amd: Mapping[str, Any] | None = None) -> str:
        call = self._new(Direction.OUTBOUND)
        self._emit(
            Offered(
                call_ref=call.ref,
                at=self.clock.now(),
                direction=Direction.OUTBOUND,
                ani=caller_id,
                dnis=to,
                tenant_id=tenant_id,
            )
        )
        number = self._numbers.get(to, SimNumber())
        call.talk_s = number.talk_s
        if amd is not None and number.outcome in ("answer", "answering_machine"):
            self._answer_detected(call, number)
        elif number.outcome == "answer":

            def picked_up() -> None:
                if not call.ended:
                    call.connected = True
                    self._emit(Answered(call_ref=call.ref, at=self.clock.now(), by="remote"))

            self.clock.call_later(number.ring_seconds, picked_up)
        elif number.outcome == "busy":
            self.clock.call_later(1.0, lambda: self._end(call, EndCause.BUSY))
        elif number.outcome == "no_answer":
            self.clock.call_later(NO_ANSWER_TIMEOUT_S, lambda: self._end(call, EndCause.NO_ANSWER))
        elif number.outcome == "answering_machine":
            self.clock.call_later(number.ring_seconds + 3.0, lambda: self._end(call, EndCause.ANSWERING_MACHINE))
        else:
            self.clock.call_later(0.5, lambda: self._end(call, EndCause.INVALID_NUMBER))
        return call.ref

    def _answer_detected(self, call: _Call, number: SimNumber) -> None:
        """Picked up (a person or a machine), reported after the simulated detector's verdict, right or wrong."""
        errors = self.amd_errors
        machine = number.outcome == "answering_machine"
        wrong = self._random.random() < (errors.missed_machine if machine else errors.false_machine)
        verdict = "machine" if machine != wrong else "human"
        listen = errors.machine_decision_s if verdict == "machine" else errors.human_decision_s
        if machine and call.talk_s is None:
            call.talk_s = 20.0  # an agent who gets a machine hangs up after its greeting

        def decided() -> None:
            if not call.ended:
                call.connected = True
                self._emit(Answered(call_ref=call.ref, at=self.clock.now(), by="remote", amd=verdict))

        self.clock.call_later(number.ring_seconds + listen, decided)

    def transfer(self, call_ref: str, target: str) -> None:
        self._emit(Transferred(call_ref=call_ref, at=self.clock.now(), target=target, attended=False))
        if target in self._agents:
            self._calls[call_ref].connected = False
            self.route_to_agent(call_ref, target)
        else:  # an outside number: the call leaves the center
            self._end(self._calls[call_ref], EndCause.TRANSFERRED)

    def consult(self, call_ref: str, target: str) -> None:
        call = self._calls[call_ref]
        if call.ended or call.consult is not None:
            return
        self.hold(call_ref, on=True)
        call.prompts.append("hold-music")
        call.consult, call.consult_connected = target, False
        self._emit(Consult(call_ref=call_ref, at=self.clock.now(), target=target, state=ConsultState.RINGING))
        phone = self._agents.get(target, SimAgent())  # like route_to_agent: an unknown phone answers after 2 s
        if phone.answers:
            self.clock.call_later(phone.answer_after, lambda: self.answer_agent_phone(call_ref, target))

    def complete_transfer(self, call_ref: str) -> None:
        call = self._calls[call_ref]
        target = call.consult
        if call.ended or target is None or not call.consult_connected:
            return
        call.consult, call.consult_connected, call.agent = None, False, target
        at = self.clock.now()
        self._emit(Transferred(call_ref=call_ref, at=at, target=target, attended=True))
        self._emit(Bridged(call_ref=call_ref, at=at, agent=target))
        self.hold(call_ref, on=False)

    def cancel_transfer(self, call_ref: str) -> None:
        call = self._calls[call_ref]
        if not call.ended and call.consult is not None:
            self._consult_over(call, EndCause.NORMAL)

    def consulted_agent_hangs_up(self, call_ref: str) -> None:
        """The colleague consulted for an attended transfer hangs up (or refuses)."""
        self._consult_over(self._calls[call_ref], EndCause.NORMAL)

    def _consult_over(self, call: _Call, cause: EndCause) -> None:
        target = call.consult
        if target is None:
            return
        call.consult, call.consult_connected = None, False
        at = self.clock.now()
        self._emit(Consult(call_ref=call.ref, at=at, target=target, state=ConsultState.ENDED, cause=cause))
        if not call.ended:
            self.hold(call.ref, on=False)

    # -- Monitoring ------------------------------------------------------------------------------------------

    def monitor(self, call_ref: str, listener: str) -> None:
        """``listener``'s phone (one of the simulator's agents' phones) picks up after its ``answer_after`` and
        listens; any other listener cannot be reached (off at once)."""
        call = self._calls[call_ref]
        if call.ended or listener in call.listeners:
            return
        phone = self._agents.get(listener)
        if phone is None:
            self._emit(MonitorChanged(call_ref=call_ref, at=self.clock.now(), listener=listener, on=False))
            return
        call.listeners[listener] = False
        if phone.answers:

            def pick_up() -> None:
                if not call.ended and call.listeners.get(listener) is False:
                    call.listeners[listener] = True
                    self._emit(MonitorChanged(call_ref=call_ref, at=self.clock.now(), listener=listener, on=True))

            self.clock.call_later(phone.answer_after, pick_up)

    def stop_monitor(self, call_ref: str, listener: str) -> None:
        call = self._calls[call_ref]
        if call.listeners.pop(listener, None) is not None:
            self._emit(MonitorChanged(call_ref=call_ref, at=self.clock.now(), listener=listener, on=False))

    def answer_agent_phone(self, call_ref: str, agent: str) -> None:
        """The agent picks up from the desktop (the simulator's phones have no handset): a call ringing at
        them, or a colleague's consultation."""
        call = self._calls.get(call_ref)
        if call is not None and not call.ended and call.consult == agent and not call.consult_connected:
            call.consult_connected = True
            self._emit(Consult(call_ref=call_ref, at=self.clock.now(), target=agent, state=ConsultState.CONNECTED))
            return
        if call is None or call.ended or agent not in call.ringing:
            return
        call.connected, call.agent = True, agent
        call.ringing.clear()
        self._emit(Bridged(call_ref=call_ref, at=self.clock.now(), agent=agent))
        if call.talk_s is not None:
            self.clock.call_later(call.talk_s, lambda: self._end(call, EndCause.NORMAL))

    def hold(self, call_ref: str, *, on: bool) -> None:
        self._emit(HoldChanged(call_ref=call_ref, at=self.clock.now(), on_hold=on))

    def hangup(self, call_ref: str) -> None:
        self._end(self._calls[call_ref], EndCause.NORMAL)

    def record(self, call_ref: str, state: RecordingState) -> None:
        self._calls[call_ref].recording = state
        ref = f"sim/{call_ref}.wav" if state is RecordingState.STARTED else None
        self._emit(RecordingChanged(call_ref=call_ref, at=self.clock.now(), state=state, recording_ref=ref))

    def live_calls(self) -> set[str]:
        return {ref for ref, call in self._calls.items() if not call.ended}

    def audio_queued_s(self, call_ref: str) -> float:
        return 0.0  # simulated prompts take no time

    # -- internals ---------------------------------------------------------------------------------------

    def _new(self, direction: Direction, presses: str = "") -> _Call:
        call = _Call(ref=f"{self.prefix}-{next(self._ids)}", direction=direction, presses=presses)
        self._calls[call.ref] = call
        return call

    def _end(self, call: _Call, cause: EndCause) -> None:
        if not call.ended:
            call.ended = True
            self._consult_over(call, EndCause.NORMAL)  # the caller is gone: the consultation has no point
            for listener in list(call.listeners):  # and the listeners hang up
                self.stop_monitor(call.ref, listener)
            self._ended.append(call.ref)
            self._emit(Ended(call_ref=call.ref, at=self.clock.now(), cause=cause))
            while len(self._ended) > KEEP_ENDED:  # a demo runs for days: forget the oldest ended calls
                self._calls.pop(self._ended.popleft(), None)

    def _emit(self, event: DriverEvent) -> None:
        for handler in list(self._handlers):
            handler(event)


def _conforms(driver: SimDriver) -> TelephonyDriver:
    """mypy checks here that the simulator implements the whole boundary."""
    return driver


def _monitors(driver: SimDriver) -> Monitoring:
    return driver
