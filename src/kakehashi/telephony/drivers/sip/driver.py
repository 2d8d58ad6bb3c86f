"""The real telephony driver: SIP calls through Kamailio and rtpengine, answered by the CTI's media worker.

The worker (``sip.media``, a PJSIP back-to-back user agent in its own process) does what a phone system
does; this class turns the boundary's commands into the worker's JSON commands and the worker's events into
the boundary's events (``telephony.port``) — the same events the simulator sends, so routing, IVR, screen
pop and CDRs work unchanged (ADR 0013).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kakehashi.kit.db import utcnow
from kakehashi.telephony.drivers.sim.clock import RealTimeClock
from kakehashi.telephony.drivers.sip.prompts import PromptCache, hold_music, wav_seconds
from kakehashi.telephony.port import (
    AgentRinging,
    Answered,
    Bridged,
    Direction,
    DriverEvent,
    DtmfReceived,
    EndCause,
    Ended,
    EventHandler,
    HoldChanged,
    Offered,
    RecordingChanged,
    RecordingState,
    SensitiveDtmfReceived,
    TelephonyDriver,
    Transferred,
)

log = logging.getLogger(__name__)
OUTCOMES = {"busy": EndCause.BUSY, "no_answer": EndCause.NO_ANSWER, "invalid": EndCause.INVALID_NUMBER}


class MediaWorkerError(RuntimeError):
    pass


@dataclass(frozen=True)
class SipOptions:
    """Where the worker listens and how it reaches Kamailio; where prompts and recordings live."""

    worker_port: int
    proxy: str  # Kamailio host:port
    data_dir: Path
    log_level: int = 0
    start_timeout_s: float = 20.0
    no_answer_s: float = 30.0  # an outbound call nobody answers within this is a no-answer


@dataclass(eq=False)
class _Call:
    ref: str
    direction: Direction
    ani: str
    tenant_id: int
    live: bool = True
    sensitive_left: int = 0  # keys still to come of a sensitive collect
    transferring_to: str | None = None
    audio_until: float = 0.0  # (monotonic) when the prompts queued so far will have been heard
    ringing: set[str] = field(default_factory=set)


class SipDriver:
    """``TelephonyDriver`` over real SIP. ``tenant_of(dnis)`` says whose number was dialled (None: not ours,
    the call is refused with 404)."""

    name = "sip"

    def __init__(self, options: SipOptions, tenant_of: Callable[[str], int | None]) -> None:
        self.options = options
        self.tenant_of = tenant_of
        self.clock = RealTimeClock()
        self.prompts = PromptCache(options.data_dir / "prompts")
        self.recordings = options.data_dir / "recordings"
        self.recordings.mkdir(parents=True, exist_ok=True)
        self.music = hold_music(self.prompts.directory / "hold-music.wav")
        self._handlers: list[EventHandler] = []
        self._calls: dict[str, _Call] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stderr = open(options.data_dir / "sip-media.log", "ab")  # noqa: SIM115 - lives as long as the worker
        self._proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "kakehashi.telephony.drivers.sip.media", "--port", str(options.worker_port),
             "--proxy", options.proxy, "--log-level", str(options.log_level)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, encoding="utf-8",
            start_new_session=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, name="sip-media-events", daemon=True)
        self._reader.start()
        if not self._ready.wait(options.start_timeout_s):
            self.close()
            raise MediaWorkerError(f"the SIP media worker did not start; see {options.data_dir / 'sip-media.log'}")

    # -- the worker -------------------------------------------------------------------------------------------
    def _send(self, cmd: str, **fields: Any) -> None:
        stdin: IO[str] | None = self._proc.stdin
        if stdin is None or self._proc.poll() is not None:
            raise MediaWorkerError("the SIP media worker is not running")
        with self._lock:
            stdin.write(json.dumps({"cmd": cmd, **fields}, ensure_ascii=False) + "\n")
            stdin.flush()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self._on_worker_event(json.loads(line))
            except Exception:  # one bad event must not stop every call's events
                log.exception("SIP media event failed: %s", line.strip())
        for call in list(self._calls.values()):  # the worker died: its calls are gone
            self._end(call, EndCause.FAILED)

    def close(self) -> None:
        """Stop the worker (its calls are hung up) and the timers."""
        if self._proc.poll() is None:
            try:
                self._send("quit")
                self._proc.wait(10)
            except (MediaWorkerError, OSError, subprocess.TimeoutExpired):
                os.killpg(self._proc.pid, 9)
                self._proc.wait(5)
        self._reader.join(5)
        self._stderr.close()
        self.clock.close()

    # -- TelephonyDriver commands ---------------------------------------------------------------------------
    def subscribe(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    def answer(self, call_ref: str) -> None:
        self._send("answer", ref=call_ref)

    def play(self, call_ref: str, prompt: str) -> None:
        """Prompts play one after the other (a recording notice, then the menu)."""
        wav = self.prompts.wav_for(prompt)
        call = self._calls.get(call_ref)
        if call is not None:
            call.audio_until = max(time.monotonic(), call.audio_until) + wav_seconds(wav)
        self._send("play", ref=call_ref, file=str(wav), after=True)

    def collect_digits(self, call_ref: str, *, max_digits: int, timeout_s: float, sensitive: bool = False) -> None:
        # The keys come as the caller presses them; the IVR runner keeps the time-outs.
        call = self._calls.get(call_ref)
        if call is not None:
            call.sensitive_left = max_digits if sensitive else 0

    def route_to_agent(self, call_ref: str, agent: str) -> None:
        call = self._calls[call_ref]
        call.ringing.add(agent)
        self._send("connect_agent", ref=call_ref, agent=agent, caller_id=call.ani)
        self._emit(AgentRinging(call_ref=call_ref, at=utcnow(), agent=agent))

    def park(self, call_ref: str, *, music: str | None = None) -> None:
        call = self._calls.get(call_ref)
        if call is not None:
            call.ringing.clear()
            call.audio_until = 0.0
        self._send("drop_agent", ref=call_ref)
        self._send("play", ref=call_ref, file=str(self._music(music)), loop=True)

    def originate(self, to: str, *, caller_id: str, tenant_id: int) -> str:
        ref = f"sipo-{os.getpid()}-{next(self._ids)}"
        self._calls[ref] = _Call(ref, Direction.OUTBOUND, caller_id, tenant_id)
        self._emit(Offered(call_ref=ref, at=utcnow(), direction=Direction.OUTBOUND, ani=caller_id, dnis=to,
                           tenant_id=tenant_id))  # fmt: skip
        self._send("originate", ref=ref, to=_dialable(to), caller_id=_dialable(caller_id),
                   timeout_s=self.options.no_answer_s)  # fmt: skip
        return ref

    def transfer(self, call_ref: str, target: str, *, attended: bool) -> None:
        """To an agent: their phone rings and the current agent leaves the call. Elsewhere: the call leaves
        the center (a blind transfer to an outside number is not offered yet: the call ends as transferred)."""
        call = self._calls[call_ref]
        self._emit(Transferred(call_ref=call_ref, at=utcnow(), target=target, attended=attended))
        self._send("drop_agent", ref=call_ref)
        if target.isdigit() or target.startswith("+"):
            call.transferring_to = target
            self._send("hangup", ref=call_ref)
            return
        self._send("play", ref=call_ref, file=str(self.music), loop=True)
        self.route_to_agent(call_ref, target)

    def hold(self, call_ref: str, *, on: bool) -> None:
        self._send("hold", ref=call_ref, on=on, music=str(self.music))
        self._emit(HoldChanged(call_ref=call_ref, at=utcnow(), on_hold=on))

    def hangup(self, call_ref: str) -> None:
        self._send("hangup", ref=call_ref)

    def record(self, call_ref: str, state: RecordingState) -> None:
        self._send("record", ref=call_ref, state=state.value, file=str(self.recording_path(call_ref)))

    def live_calls(self) -> set[str]:
        return {ref for ref, call in self._calls.items() if call.live}

    def audio_queued_s(self, call_ref: str) -> float:
        call = self._calls.get(call_ref)
        return 0.0 if call is None else max(0.0, call.audio_until - time.monotonic())

    def recording_path(self, call_ref: str) -> Path:
        return self.recordings / f"{call_ref}.wav"

    # -- worker events → boundary events --------------------------------------------------------------------
    def _on_worker_event(self, ev: dict[str, Any]) -> None:
        kind, ref = ev["ev"], ev.get("ref", "")
        if kind == "ready":
            self._ready.set()
            return
        if kind == "incoming":
            self._incoming(ref, ev["ani"], ev["dnis"])
            return
        call = self._calls.get(ref)
        if call is None:
            if kind == "error":
                log.warning("SIP media worker: %s", ev.get("message"))
            return
        at = utcnow()
        match kind:
            case "answered":
                self._emit(Answered(call_ref=ref, at=at, by=ev["by"]))
            case "dtmf":
                if call.sensitive_left > 0:
                    call.sensitive_left -= 1
                    self._emit(SensitiveDtmfReceived(call_ref=ref, at=at, digits=ev["digit"]))
                else:
                    self._emit(DtmfReceived(call_ref=ref, at=at, digits=ev["digit"]))
            case "agent_answered" if ev["agent"] in call.ringing:
                call.ringing.clear()
                call.audio_until = 0.0  # the bridge stopped any prompt
                self._emit(Bridged(call_ref=ref, at=at, agent=ev["agent"]))
            case "agent_failed":
                call.ringing.discard(ev["agent"])  # the ring time-out of routing moves the caller on
            case "recording":
                state = RecordingState(ev["state"])
                path = self.recording_path(ref)
                recording_ref = f"sip/{path.name}" if state is RecordingState.STARTED else None
                self._emit(RecordingChanged(call_ref=ref, at=at, state=state, recording_ref=recording_ref))
            case "ended":
                if call.transferring_to is not None:
                    cause = EndCause.TRANSFERRED
                elif call.direction is Direction.OUTBOUND and not ev["answered"]:
                    cause = OUTCOMES.get(ev["outcome"], EndCause.FAILED)
                else:
                    cause = EndCause.NORMAL
                self._end(call, cause)
            case "error":
                log.warning("SIP media worker on %s: %s", ref, ev.get("message"))

    def _incoming(self, ref: str, ani: str, dnis: str) -> None:
        tenant_id = self.tenant_of(dnis)
        if tenant_id is None:
            self._send("reject", ref=ref, code=404)
            return
        self._calls[ref] = _Call(ref, Direction.INBOUND, ani, tenant_id)
        self._send("ringing", ref=ref)
        self._emit(Offered(call_ref=ref, at=utcnow(), direction=Direction.INBOUND, ani=ani, dnis=dnis,
                           tenant_id=tenant_id))  # fmt: skip

    def _end(self, call: _Call, cause: EndCause) -> None:
        if call.live:
            call.live = False
            self._emit(Ended(call_ref=call.ref, at=utcnow(), cause=cause))
            self._calls.pop(call.ref, None)

    def _music(self, music: str | None) -> Path:
        return self.prompts.wav_for(music) if music and music.endswith(".wav") else self.music

    def _emit(self, event: DriverEvent) -> None:
        for handler in list(self._handlers):
            handler(event)


def _dialable(number: str) -> str:
    """E.164 → the national form Japanese carriers expect on a trunk (+81312345678 → 0312345678)."""
    return "0" + number[3:] if number.startswith("+81") else number


def _conforms(driver: SipDriver) -> TelephonyDriver:
    """mypy checks here that the SIP driver implements the whole boundary."""
    return driver
