"""The outside world of the call-flow contract suite, with real SIP phones and real time.

The CTI side is the real :class:`SipDriver` (its PJSIP media workers) behind a private Kamailio + rtpengine on
127.0.0.1 (``kakehashi.telephony.drivers.sip.lab``); the world around it is baresip phones:

- a **customer** dials in from a phone registered as their national number (the ANI the CTI sees), keys the
  digits they were given when the IVR asks for keys, hangs up after ``patience`` unless an agent answered,
  or ``talk_s`` after an agent answered;
- an **agent**'s phone is registered as the agent's name and answers ``answer_after`` seconds after it starts
  ringing (or never);
- a **dialled number** (outbound, callbacks) is a phone registered as that number that answers after
  ``ring_seconds``, stays silent (no answer: the driver gives up), or rejects the call with 486 (busy); a
  number without a phone is not in service (Kamailio answers 404).

The CTI is given a thin proxy of the driver (:class:`WorldDriver`) that forwards every command and tells the
world what it needs to know, as the simulator knows it: when the IVR asks for keys (the caller then keys the
pending ones, one per ``key_s``) and which prompts were played. The rest comes from the driver's events, which
the world sees before and after the CTI: a new call (its line: whose phone, what they will key), an agent
reached (the caller's talk time starts), the recorder's state and the keys the worker heard, the end.

What the phones hear can be checked too (``hears``, ``talking``, ``holding``, ``consulting``): customers send a
440 Hz tone, agents a 660 Hz one, supervisors 880 Hz, and a tone's level is measured in what a phone received.

Time is real: ``wait`` sleeps, durations are only as exact as SIP signalling (``tolerance``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import heapq
import itertools
import logging
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from kakehashi.kit import migrate
from kakehashi.kit.config import Settings
from kakehashi.kit.db import make_engine
from kakehashi.kit.dbadmin import recreate_database
from kakehashi.telephony.drivers.sip.driver import DEFAULT_WORKERS, SipDriver
from kakehashi.telephony.drivers.sip.lab import Audio, LabError, Phone, SipStack, release_ports, reserve_ports
from kakehashi.telephony.port import (
    Bridged,
    Consult,
    ConsultState,
    Direction,
    DriverEvent,
    DtmfReceived,
    Ended,
    EventHandler,
    Monitoring,
    Offered,
    RecordingChanged,
    RecordingState,
    SensitiveDtmfReceived,
    TelephonyDriver,
)

log = logging.getLogger(__name__)
AGENT_TONE_HZ = 660.0
CUSTOMER_TONE_HZ = 440.0
SUPERVISOR_TONE_HZ = 880.0
#: Notes of the default hold music (``sip.prompts.hold_music``) that no phone's tone has (its 659 Hz would pass
#: for an agent's tone, if heard all the time).
MUSIC_HZ = (523.25, 783.99)
#: What a phone hears is measured per 40 ms frame: a loaded machine makes the worker drop or repeat a frame now
#: and then, and a long window across such a phase jump would cancel the tone out. Levels are amplitudes (full
#: scale 1; phones send 0.5, the music 0.08).
FRAME_S = 0.04
HEARD = 0.25  # heard: at this level or more in three frames out of four
UNHEARD = 0.03  # not heard: below this in three frames out of four (a phase jump leaks ~0.05 into its frame)
MUSIC = 0.03  # the music's own notes at this level in 40 % of the frames or more (they fill half of them)
POLL_S = 0.01  # how often the world looks at its phones and timers
KEY_HEARD_S = 1.5  # a key the CTI has not reported after this is taken as lost (the next one goes anyway)
RECORDING_ON = (RecordingState.STARTED, RecordingState.RESUMED)
#: Ports kept for a second driver's media workers (two ports apart from the first: room for eight).
WORKER_PORTS = 16
#: rtpengine's media ports per stack (4 a call): a test has a few calls, and several stacks are up at once
#: (the test's, the next one, those stopping), so the default 1600 would fragment the 10000 ports of the lab.
RTP_PORTS = 200
#: The CTI's SIP engine under test: "pjsip" (media workers, ADR 0013) or "rtpengine" (the media plane, ADR 0024).
ENGINE = os.environ.get("KAKEHASHI_TEST_SIP_ENGINE", "rtpengine")


def tone_levels(audio: Audio, hz: float, *, last_s: float = 1.0) -> np.ndarray:
    """The amplitude (0–1) of ``hz`` in each ``FRAME_S`` frame of the last ``last_s`` of ``audio`` (Hann window:
    a tone 120 Hz away leaks less than 0.3 % of its level)."""
    n = int(FRAME_S * audio.rate)
    samples = np.frombuffer(audio.samples, dtype=np.int16)[-int(last_s * audio.rate) :] / 32768.0
    frames = samples[: len(samples) // n * n].reshape(-1, n)
    probe = np.hanning(n) * np.exp(-2j * np.pi * hz * np.arange(n) / audio.rate)
    return np.asarray(4 * np.abs(frames @ probe) / n)


def national(number: str) -> str:
    """The number as a Japanese phone signals it: digits only, ``+81…`` → ``0…`` (``03-1234-5678`` →
    ``0312345678``). Phones register as this; the CTI sees it as the ANI."""
    digits = "".join(c for c in number if c.isdigit())
    return "0" + digits[2:] if number.startswith("+81") else digits


@dataclass(eq=False)
class Handset:
    """A phone of the world and what it does when it rings."""

    phone: Phone
    answer_after: float | None = None  # seconds from the first ring to picking up; None: lets it ring
    busy: bool = False  # rejects every call (486 Busy Here)
    talk_s: float | None = None  # a dialled number: hangs up this long after reaching an agent
    seen: int = 0  # phone events handled so far
    ringing: str = ""  # baresip's id of the call ringing now
    up: bool = False  # a call is established


@dataclass(eq=False)
class Line:
    """One call as the world sees it: whose phone, what the caller will key, what they heard."""

    ref: str
    handset: Handset | None  # None: an outbound call to a number nobody has
    inbound: bool
    presses: str = ""  # keys the caller will press when asked
    talk_s: float | None = None
    connected: bool = False  # an agent answered
    ended: bool = False
    keys: deque[str] = field(default_factory=deque)  # asked for, not yet keyed
    next_key_at: float = 0.0  # (monotonic) the next key is pressed no earlier
    last_key_at: float = 0.0
    keys_sent: int = 0
    keys_heard: int = 0  # keys the CTI reported (DtmfReceived, SensitiveDtmfReceived)
    recording: RecordingState | None = None  # as the worker reported it
    keys_on_recording: str = ""
    prompts: list[str] = field(default_factory=list)
    consulting: str | None = None  # the colleague an agent consults (attended transfer)


@dataclass
class _Caller:
    """Someone about to dial in (their line is made when the CTI is offered the call)."""

    user: str
    presses: str
    talk_s: float | None
    ref: str = ""


class WorldDriver:
    """The SIP driver as the CTI sees it: every command is forwarded unchanged; the world hears about the
    ones a caller reacts to (keys asked, prompts played) and sees every event before and after the CTI."""

    def __init__(self, driver: SipDriver, world: SipWorld) -> None:
        self.name = driver.name
        self._driver = driver
        self._world = world
        self._handlers: list[EventHandler] = []
        self._attached = True
        driver.subscribe(self._on_event)

    def detach(self) -> None:
        """No more events to the CTI's handlers (the test is over; the worker may still end calls)."""
        self._attached = False

    def _on_event(self, event: DriverEvent) -> None:
        if not self._attached:
            return
        self._world.before(event)
        for handler in list(self._handlers):
            handler(event)
        self._world.after(event)

    def subscribe(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    def answer(self, call_ref: str) -> None:
        self._driver.answer(call_ref)

    def play(self, call_ref: str, prompt: str) -> None:
        self._driver.play(call_ref, prompt)
        self._world.played(call_ref, prompt)

    def collect_digits(self, call_ref: str, *, max_digits: int, timeout_s: float, sensitive: bool = False) -> None:
        self._driver.collect_digits(call_ref, max_digits=max_digits, timeout_s=timeout_s, sensitive=sensitive)
        self._world.keys_asked(call_ref, max_digits)

    def route_to_agent(self, call_ref: str, agent: str) -> None:
        self._driver.route_to_agent(call_ref, agent)

    def park(self, call_ref: str, *, music: str | None = None) -> None:
        self._driver.park(call_ref, music=music)
        self._world.played(call_ref, music or "hold-music")

    def originate(self, to: str, *, caller_id: str, tenant_id: int, amd: Mapping[str, Any] | None = None) -> str:
        return self._driver.originate(to, caller_id=caller_id, tenant_id=tenant_id, amd=amd)

    def transfer(self, call_ref: str, target: str) -> None:
        self._driver.transfer(call_ref, target)

    def consult(self, call_ref: str, target: str) -> None:
        self._world.consulting_with(call_ref, target)
        self._driver.consult(call_ref, target)

    def complete_transfer(self, call_ref: str) -> None:
        self._driver.complete_transfer(call_ref)

    def cancel_transfer(self, call_ref: str) -> None:
        self._driver.cancel_transfer(call_ref)

    def monitor(self, call_ref: str, listener: str) -> None:
        self._driver.monitor(call_ref, listener)

    def stop_monitor(self, call_ref: str, listener: str) -> None:
        self._driver.stop_monitor(call_ref, listener)

    def hold(self, call_ref: str, *, on: bool) -> None:
        self._driver.hold(call_ref, on=on)

    def hangup(self, call_ref: str) -> None:
        self._driver.hangup(call_ref)

    def record(self, call_ref: str, state: RecordingState) -> None:
        self._driver.record(call_ref, state)

    def live_calls(self) -> set[str]:
        return self._driver.live_calls()

    def audio_queued_s(self, call_ref: str) -> float:
        return self._driver.audio_queued_s(call_ref)


def _conforms(driver: WorldDriver) -> TelephonyDriver:
    return driver


def _monitors(driver: WorldDriver) -> Monitoring:
    return driver


class SipWorld:
    """Phones on ``stack`` around a new :class:`SipDriver` (data in ``data_dir``; prompts rendered once in the
    shared ``prompts`` folder when given). ``driver`` is what the CTI uses; ``close()`` ends everything."""

    name = "sip"
    tolerance = 0.75  # s: signalling takes tens of milliseconds; a busy machine wakes a sleeping test late
    key_s = 0.3  # a caller keys one digit every 0.3 s (baresip sends a digit in ~0.25 s: faster ones queue up)
    no_answer_s = 2.0  # the driver gives up on an outbound call nobody answers after this

    def __init__(self, stack: SipStack, data_dir: Path, *, prompts: Path | None = None) -> None:
        self.stack = stack
        self.data_dir = data_dir
        self._prompts = prompts
        self._lock = threading.RLock()
        self._offered = threading.Condition(self._lock)
        self._handsets: dict[str, Handset] = {}  # by SIP user (agent name, national number)
        self._lines: dict[str, Line] = {}
        self._callers: list[_Caller] = []  # dialling in, not yet offered to the CTI
        self._tenants: dict[str, int] = {}  # the numbers callers dial → whose they are
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._others: list[SipDriver] = []
        self._ports: list[int] = []
        self._stop = threading.Event()
        self.sip = self._new_driver(stack.cti_port, data_dir, tenant_of=self._tenant_of, workers=stack.cti_workers)
        self.driver = WorldDriver(self.sip, self)
        self.clock = self.sip.clock
        self._thread = threading.Thread(target=self._run, name="sip-world", daemon=True)
        self._thread.start()

    def _new_driver(
        self, port: int, data_dir: Path, *, tenant_of: Callable[[str], int | None], workers: int | None = None
    ) -> SipDriver:
        """A driver with ``workers`` media workers from ``port`` on (the stack's own: as many as it dispatches to)."""
        self._share_prompts(data_dir)
        default = 1 if self.stack.cti_engine == "rtpengine" else DEFAULT_WORKERS
        options = self.stack.cti_options(data_dir, no_answer_s=self.no_answer_s, workers=workers or default)
        options = dataclasses.replace(options, worker_port=port)
        return SipDriver(options, tenant_of=tenant_of)

    def _share_prompts(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        if self._prompts is not None and not (data_dir / "prompts").exists():
            (data_dir / "prompts").symlink_to(self._prompts, target_is_directory=True)

    def warm(self, prompts: Iterable[str]) -> None:
        """Render prompts before the test (Open JTalk takes ~0.5 s a text, which a test's timing should not)."""
        for prompt in prompts:
            self.sip.prompts.wav_for(prompt)

    # -- callers, agents, numbers ------------------------------------------------------------------------

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
        """The caller's phone dials ``dnis``; returns the CTI's reference once the CTI has been offered the
        call (and handled the offer)."""
        user = national(ani)
        handset = self._handset(user, CUSTOMER_TONE_HZ)
        caller = _Caller(user, presses, talk_s)
        with self._lock:
            self._tenants[national(dnis)] = tenant_id
            self._callers.append(caller)
        handset.phone.dial(national(dnis))
        deadline = time.monotonic() + 10
        with self._offered:
            while not caller.ref:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the CTI was not offered {user}'s call to {dnis} within 10 s")
                self._offered.wait(left)
            line = self._lines[caller.ref]
            if patience is not None:
                self._later(patience, lambda: None if line.connected else self._hang_up(line))
        return caller.ref

    def set_agent(self, name: str, *, answer_after: float = 2.0, answers: bool = True) -> None:
        handset = self._handset(name, AGENT_TONE_HZ)
        handset.answer_after = answer_after if answers else None

    def set_supervisor(self, name: str, *, answer_after: float = 0.5) -> None:
        """A supervisor's phone (silent monitor): it sends its own tone, which nobody on the call should hear."""
        self._handset(name, SUPERVISOR_TONE_HZ).answer_after = answer_after

    def set_number(self, number: str, outcome: str, *, ring_seconds: float = 8.0, talk_s: float | None = None) -> None:
        user = national(number)
        if outcome == "answering_machine":
            pytest.skip("the SIP lab has no answering machine, and the SIP driver no answering-machine detection")
        if outcome == "invalid":  # not in service: no phone registered, Kamailio answers 404
            with self._lock:
                handset = self._handsets.pop(user, None)
            if handset is not None:
                handset.phone.stop()
            return
        if outcome not in ("answer", "no_answer", "busy"):
            raise ValueError(f"unknown outcome {outcome!r}")
        handset = self._handset(user, CUSTOMER_TONE_HZ)
        handset.answer_after = ring_seconds if outcome == "answer" else None
        handset.busy = outcome == "busy"
        handset.talk_s = talk_s

    def caller_hangs_up(self, call_ref: str) -> None:
        self._hang_up(self._lines[call_ref])

    def consulted_agent_hangs_up(self, call_ref: str) -> None:
        """The colleague an agent consults hangs up their phone (or refuses the call while it rings)."""
        with self._lock:
            target = self._lines[call_ref].consulting
            handset = self._handsets.get(target) if target else None
        if handset is not None:
            self._command(handset, "hangup")

    def _handset(self, user: str, tone_hz: float) -> Handset:
        with self._lock:
            found = self._handsets.get(user)
        if found is not None:
            return found
        phone = self.stack.phone(user, tone_hz=tone_hz)
        phone.wait_registered()
        handset = Handset(phone)
        with self._lock:
            self._handsets[user] = handset
        return handset

    def _tenant_of(self, dnis: str) -> int | None:
        with self._lock:
            return self._tenants.get(national(dnis))

    # -- what the callers heard and keyed ------------------------------------------------------------------

    def prompts_played(self, call_ref: str) -> list[str]:
        with self._lock:
            return list(self._lines[call_ref].prompts)

    def keys_on_recording(self, call_ref: str) -> str:
        """The keys the worker received while its recorder ran (as it reported both, in its own order)."""
        with self._lock:
            return self._lines[call_ref].keys_on_recording

    # -- what the phones hear ----------------------------------------------------------------------------------

    def hears(self, who: str, hz: float, *, last_s: float = 1.0) -> np.ndarray:
        """The level of ``hz`` in each frame of the last ``last_s`` of what ``who`` (an agent, a supervisor, or
        the caller of a call reference) heard on their phone's latest call (``tone_levels``); zeros before."""
        with self._lock:
            line = self._lines.get(who)
            handset = line.handset if line is not None else self._handsets.get(who)
        if handset is None:
            raise LookupError(f"no phone for {who}")
        frames = round(last_s / FRAME_S)
        try:
            levels = tone_levels(handset.phone.received_audio(), hz, last_s=last_s)
        except (LabError, OSError):
            return np.zeros(frames)
        return levels if len(levels) == frames else np.zeros(frames)  # a call not yet that long: nothing heard

    def heard(self, who: str, hz: float) -> bool:
        """``who`` hears ``hz`` now (three frames out of four of the last second)."""
        return bool(np.quantile(self.hears(who, hz), 0.25) >= HEARD)

    def unheard(self, who: str, hz: float) -> bool:
        """``who`` does not hear ``hz`` now (three frames out of four of the last second)."""
        return bool(np.quantile(self.hears(who, hz), 0.75) < UNHEARD)

    def talking(self, call_ref: str, agent: str, timeout: float = 15.0) -> bool:
        """Whether the caller of ``call_ref`` and ``agent`` hear each other (within ``timeout``)."""
        return self.until(lambda: self.heard(agent, CUSTOMER_TONE_HZ) and self.heard(call_ref, AGENT_TONE_HZ),
                          timeout)  # fmt: skip

    def holding(self, call_ref: str, timeout: float = 15.0) -> bool:
        """Whether the caller of ``call_ref`` hears the hold music and no agent (within ``timeout``)."""

        def music() -> bool:
            notes = np.maximum(*(self.hears(call_ref, hz, last_s=2.0) for hz in MUSIC_HZ))
            return bool(np.mean(notes >= MUSIC) >= 0.4)

        return self.until(lambda: not self.heard(call_ref, AGENT_TONE_HZ) and music(), timeout)

    def consulting(self, agent: str, colleague: str, timeout: float = 15.0) -> bool:
        """Whether ``agent`` and ``colleague`` hear each other, and not the caller (within ``timeout``)."""
        return self.until(lambda: all(self.heard(who, AGENT_TONE_HZ) and self.unheard(who, CUSTOMER_TONE_HZ)
                                      for who in (agent, colleague)), timeout)  # fmt: skip

    def on_phone(self, user: str) -> bool:
        """Whether ``user``'s phone has a call up."""
        with self._lock:
            return self._handsets[user].up

    # -- time ------------------------------------------------------------------------------------------------

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def until(self, check: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    # -- a restart -----------------------------------------------------------------------------------------

    def restarted_driver(self) -> TelephonyDriver:
        """A second SIP driver (media workers of its own) that knows no calls, as after a restart."""
        port = self._port()
        driver = self._new_driver(port, self.data_dir / f"restarted-{port}", tenant_of=self._tenant_of)
        self._others.append(driver)
        return driver

    def app_settings(self, data_dir: Path) -> Settings:
        """An app whose SIP driver starts media workers of its own on this lab (the database is the test's)."""
        self._share_prompts(data_dir)
        return Settings(data_dir=data_dir, database_url="sqlite://", default_tenant="center", telephony_driver="sip",
                        sip_proxy=f"127.0.0.1:{self.stack.sip_port}", sip_media_port=self._port(),
                        sip_no_answer_s=max(5.0, self.no_answer_s), sip_engine=self.stack.cti_engine,
                        sip_rtpengine_ng=f"127.0.0.1:{self.stack.ng_port}",
                        sip_recording_spool=self.stack.recording_dir,
                        sip_dtmf_port=self.stack.dtmf_log_port or 22230)  # fmt: skip

    def _port(self) -> int:
        """The first of a free block of ports for another driver's media workers."""
        port = reserve_ports(WORKER_PORTS)
        self._ports.append(port)
        return port

    def close(self) -> None:
        """Detach the CTI, stop the world, the media workers and the lab (phones, Kamailio, rtpengine)."""
        self.driver.detach()
        self._stop.set()
        self._thread.join(5)
        for driver in (self.sip, *self._others):
            driver.close()
        self.stack.stop()
        for port in self._ports:
            release_ports(port, WORKER_PORTS)

    # -- the CTI's commands and events ---------------------------------------------------------------------

    def before(self, event: DriverEvent) -> None:
        """Before the CTI handles an event: a new call gets its line (the CTI may ask for keys at once)."""
        if not isinstance(event, Offered):
            return
        with self._lock:
            if event.direction is Direction.INBOUND:
                caller = next((c for c in self._callers if c.user == national(event.ani)), None)
                if caller is None:
                    return
                line = Line(event.call_ref, self._handsets.get(caller.user), True, caller.presses, caller.talk_s)
            else:
                handset = self._handsets.get(national(event.dnis))
                line = Line(event.call_ref, handset, False, talk_s=handset.talk_s if handset else None)
            self._lines[event.call_ref] = line

    def after(self, event: DriverEvent) -> None:
        """After the CTI handled an event: how the callers react to it."""
        with self._lock:
            line = self._lines.get(event.call_ref)
            if line is None:
                return
            match event:
                case Offered():
                    caller = next((c for c in self._callers if c.user == national(event.ani) and not c.ref), None)
                    if caller is not None and line.inbound:
                        caller.ref = event.call_ref
                        self._callers.remove(caller)
                        self._offered.notify_all()
                case Bridged():
                    line.connected = True
                    talk_s = line.talk_s
                    if talk_s is not None:
                        self._later(talk_s, lambda: self._hang_up(line))
                case RecordingChanged(state=state):
                    line.recording = state
                case Consult(state=ConsultState.ENDED):
                    line.consulting = None
                case DtmfReceived(digits=digits) | SensitiveDtmfReceived(digits=digits):
                    line.keys_heard += len(digits)
                    if line.recording in RECORDING_ON:
                        line.keys_on_recording += digits
                case Ended():
                    line.ended = True

    def consulting_with(self, call_ref: str, target: str) -> None:
        with self._lock:
            line = self._lines.get(call_ref)
            if line is not None:
                line.consulting = target

    def played(self, call_ref: str, prompt: str) -> None:
        with self._lock:
            line = self._lines.get(call_ref)
            if line is not None:
                line.prompts.append(prompt)

    def keys_asked(self, call_ref: str, max_digits: int) -> None:
        """The IVR waits for keys: the caller presses the next ``max_digits`` of theirs, one per ``key_s``."""
        with self._lock:
            line = self._lines.get(call_ref)
            if line is None:
                return
            keys, line.presses = line.presses[:max_digits], line.presses[max_digits:]
            if keys and not line.keys:
                line.next_key_at = max(line.next_key_at, time.monotonic() + self.key_s)
            line.keys.extend(keys)

    # -- the world's own thread: phones ring and are answered, keys pressed, timers run --------------------

    def _later(self, seconds: float, action: Callable[[], None], *, at: float | None = None) -> None:
        due = (time.monotonic() if at is None else at) + seconds
        with self._lock:
            heapq.heappush(self._timers, (due, next(self._seq), action))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:  # a world that stops reacting makes every later assertion fail: say why
                log.exception("the SIP world failed")
            self._stop.wait(POLL_S)

    def _step(self) -> None:
        with self._lock:
            handsets = list(self._handsets.values())
        for handset in handsets:
            events = handset.phone.events()
            for event in events[handset.seen :]:
                self._phone_event(handset, event.type, event.call_id, event.at)
            handset.seen = len(events)
        now = time.monotonic()
        due: list[Callable[[], None]] = []
        with self._lock:
            while self._timers and self._timers[0][0] <= now:
                due.append(heapq.heappop(self._timers)[2])
            keyed = [line for line in self._lines.values() if line.keys and line.next_key_at <= now]
        for action in due:
            action()
        for line in keyed:
            self._press(line)

    def _phone_event(self, handset: Handset, kind: str, call_id: str, at: float) -> None:
        if kind == "CALL_INCOMING":
            handset.ringing = call_id
            if handset.busy:
                self._later(0.0, lambda: self._reject(handset, call_id), at=at)
            elif handset.answer_after is not None:
                self._later(handset.answer_after, lambda: self._pick_up(handset, call_id), at=at)
        elif kind == "CALL_ESTABLISHED":
            handset.ringing, handset.up = "", True
        elif kind == "CALL_CLOSED":
            handset.up = False
            if handset.ringing == call_id:
                handset.ringing = ""

    def _pick_up(self, handset: Handset, call_id: str) -> None:
        if handset.ringing == call_id:
            self._command(handset, "accept")

    def _reject(self, handset: Handset, call_id: str) -> None:
        if handset.ringing == call_id:
            self._command(handset, "hangup")  # a ringing call: 486 Busy Here

    def _hang_up(self, line: Line) -> None:
        if not line.ended and line.handset is not None:
            self._command(line.handset, "hangup")

    def _press(self, line: Line) -> None:
        """The next key, ``key_s`` after the previous one and once the CTI has heard that one: a caller keys at
        their pace, but a machine too busy to send or hear a key in time must not make two keys into one
        (baresip sends one RFC 4733 event at a time)."""
        handset = line.handset
        if line.ended or handset is None:
            line.keys.clear()
            return
        if not handset.up:
            return  # the call is not established yet: the key waits
        now = time.monotonic()
        if line.keys_heard < line.keys_sent:
            if now - line.last_key_at < KEY_HEARD_S:
                return
            log.warning("call %s: key %d not heard by the CTI within %.1f s", line.ref, line.keys_sent, KEY_HEARD_S)
            line.keys_heard = line.keys_sent
        key = line.keys.popleft()
        line.keys_sent += 1
        line.last_key_at = now
        line.next_key_at = now + self.key_s
        self._command(handset, "sndcode", key)

    def _command(self, handset: Handset, command: str, params: str = "") -> None:
        try:
            handset.phone.command(command, params)
        except LabError as exc:  # e.g. the call ended just before: nothing to answer or hang up
            why = "" if command == "sndcode" else f": {exc}"  # the error names the key: no keys in logs
            log.info("phone %s: %s failed%s", handset.phone.user, command, why)


class Databases:
    """A database of its own per SIP test, on the backend under test: the driver's threads write calls while
    the test reads them, which the shared-connection fixtures (one connection, a savepoint per session) are not
    made for. Each is a copy of a template migrated once: a file copy (SQLite), or a ``CREATE DATABASE …
    TEMPLATE`` made in the background while the previous test runs (PostgreSQL, ~0.4 s). PostgreSQL's are
    dropped at the end of the session: a ``DROP DATABASE`` (a checkpoint) would stall the running test's
    commits."""

    def __init__(self, base: Path, pg_url: str) -> None:
        self.base = base
        self.base.mkdir(parents=True, exist_ok=True)
        self.pg_url = pg_url
        self._templates: dict[str, str] = {}
        self._serial = itertools.count(1)
        self._maker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sip-db")
        self._spare: dict[str, concurrent.futures.Future[str]] = {}
        self._used: list[str] = []  # PostgreSQL databases to drop at the end

    def _pg(self, name: str) -> str:
        return self.pg_url.rsplit("/", 1)[0] + f"/{name}"

    def _template(self, backend: str) -> str:
        if backend not in self._templates:
            if backend == "sqlite":
                url = f"sqlite:///{self.base / 'template.db'}"
            else:
                url = self._pg(f"kakehashi_sip_tpl_{os.getpid()}")
                recreate_database(url)
            engine = make_engine(url)
            migrate.upgrade(engine)
            engine.dispose()  # a template must have no sessions (SQLite: the WAL is folded into the file)
            self._templates[backend] = url
        return self._templates[backend]

    def _copy_pg(self, template: str) -> str:
        url = self._pg(f"kakehashi_sip_{os.getpid()}_{next(self._serial)}")
        name, source = make_url(url).database, make_url(template).database
        admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{source}"'))
        finally:
            admin.dispose()
        return url

    @contextlib.contextmanager
    def fresh(self, backend: str, directory: Path) -> Iterator[Engine]:
        template = self._template(backend)
        if backend == "sqlite":
            path = directory / "calls.db"
            shutil.copyfile(template.removeprefix("sqlite:///"), path)
            url = f"sqlite:///{path}"
        else:
            spare = self._spare.pop(backend, None)
            url = spare.result() if spare is not None else self._copy_pg(template)
            self._spare[backend] = self._maker.submit(self._copy_pg, template)
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
            if backend != "sqlite":
                self._used.append(url)

    def close(self) -> None:
        for spare in self._spare.values():
            with contextlib.suppress(Exception):
                self._used.append(spare.result())
        self._spare.clear()
        for url in self._used:
            recreate_database(url, create=False)
        self._used.clear()
        self._maker.shutdown()
        for backend, url in self._templates.items():
            if backend != "sqlite":
                recreate_database(url, create=False)
        self._templates.clear()


class Labs:
    """Ready SIP worlds: one is built ahead while a test runs (Kamailio, rtpengine, the media workers and the
    agents' phones take ~1.3 s to answer), and the teardowns of finished tests run in the background (a media
    worker takes ~1.6 s to quit). ``make(stack, data_dir)`` builds a world on a running stack."""

    def __init__(self, base: Path, make: Callable[[SipStack, Path], SipWorld]) -> None:
        self.base = base
        self.make = make
        self._serial = itertools.count(1)
        self._builder = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sip-lab-start")
        self._reaper = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sip-lab-stop")
        self._spare: concurrent.futures.Future[SipWorld] | None = None
        self._stopping: list[concurrent.futures.Future[None]] = []

    def take(self) -> SipWorld:
        """A world of its own for a test (``close`` it, or hand its teardown to ``later``, when done)."""
        spare, self._spare = self._spare, None
        try:
            world = spare.result() if spare is not None else self._build()
        except LabError:  # a start that failed (a port taken meanwhile…): one more try, now
            world = self._build()
        self._spare = self._builder.submit(self._build)
        return world

    def _build(self) -> SipWorld:
        lab = self.base / f"lab-{next(self._serial)}"
        stack = SipStack(lab / "sip", rtp_port_count=RTP_PORTS, cti_engine=ENGINE).start()
        try:
            return self.make(stack, lab / "data")
        except BaseException:
            stack.stop()
            raise

    def later(self, stop: Callable[[], None]) -> None:
        """Run a finished test's teardown in the background."""
        self._stopping.append(self._reaper.submit(stop))

    def close(self) -> None:
        """Wait for the teardowns, close the spare world; raise the first teardown that failed."""
        errors = []
        for future in self._stopping:
            try:
                future.result(60)
            except Exception as exc:
                errors.append(exc)
        self._stopping.clear()
        if self._spare is not None:
            with contextlib.suppress(Exception):
                self._spare.result(60).close()
            self._spare = None
        self._builder.shutdown()
        self._reaper.shutdown()
        if errors:
            raise errors[0]
