"""The CTI's own SIP endpoint: a back-to-back user agent on PJSIP (pjsua2), run as its own process.

Calls to the center's numbers end here (Kamailio sends them); calls to agents and customers leave from here
through Kamailio. Each call is a customer leg plus at most one agent leg, joined in PJSIP's conference
bridge; prompts and hold music are WAV players, a recording is a WAV recorder listening to both legs.
What to do is decided elsewhere: the parent process (``SipDriver``) sends commands as JSON lines on stdin
and reads events as JSON lines on stdout (ADR 0013). Why a process of its own: PJSIP wants to own its
threads, a crash here does not take the web app down, and this GPL library is never loaded into Kakehashi.

Everything PJSIP does happens on this process's main thread: ``threadCnt=0`` for SIP and media, and the loop
polls ``libHandleEvents``. Callbacks only queue work; stdin is read by a thread that only queues commands.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import queue
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pjsua2 as pj  # type: ignore[import-not-found,import-untyped,unused-ignore]

_URI_USER = re.compile(r"sips?:([^@;>]+)@")
FAILURE_NAMES = {486: "busy", 600: "busy", 408: "no_answer", 480: "no_answer", 487: "no_answer", 404: "invalid",
                 484: "invalid", 604: "invalid"}  # fmt: skip


def uri_user(uri: str) -> str:
    """The user part of a URI PJSIP has already parsed and printed (``"x" <sip:0312345678@host>``)."""
    found = _URI_USER.search(uri)
    return found.group(1) if found else ""


class _Events:
    """The event channel: the process's original stdout. PJSIP prints to fd 1 from C, so ``main`` moves fd 1
    to stderr and keeps a private copy of the real stdout for the protocol."""

    out: Any = sys.stdout


def emit(event: str, **fields: Any) -> None:
    _Events.out.write(json.dumps({"ev": event, **fields}, ensure_ascii=False) + "\n")
    _Events.out.flush()


class Leg(pj.Call):  # type: ignore[misc,unused-ignore]
    """One SIP dialog; every callback is turned into work for the main loop."""

    def __init__(self, worker: Worker, account: pj.Account, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self.worker = worker
        self.ref = ""
        self.audio: pj.AudioMedia | None = None

    def onCallState(self, prm: Any) -> None:  # noqa: N802 - PJSIP's name
        info = self.getInfo()
        self.worker.later(lambda: self.worker.leg_state(self, info.state, info.lastStatusCode))

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        info = self.getInfo()
        for i, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.audio = self.getAudioMedia(i)
                self.worker.later(lambda: self.worker.media_ready(self))

    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
        digit = prm.digit
        self.worker.later(lambda: self.worker.dtmf(self, digit))


class Player(pj.AudioMediaPlayer):  # type: ignore[misc,unused-ignore]
    def __init__(self, on_end: Callable[[], None]) -> None:
        super().__init__()
        self.on_end = on_end

    def onEof2(self) -> None:  # noqa: N802
        self.on_end()


class Inbound(pj.Account):  # type: ignore[misc,unused-ignore]
    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
        leg = Leg(self.worker, self, prm.callId)
        self.worker.incoming(leg)


@dataclass(eq=False)
class CallState:
    """A customer's call: their leg, the agent's leg, what they hear, and the recording."""

    ref: str
    customer: Leg
    inbound: bool
    agent: str | None = None
    agent_leg: Leg | None = None  # the agent who answered
    ringing: dict[str, Leg] = field(default_factory=dict)  # agents whose phones ring (several: ring-all)
    bridged: bool = False
    answered: bool = False
    player: Player | None = None
    playlist: deque[tuple[str, bool]] = field(default_factory=deque)  # prompts still to play, in order
    recorder: pj.AudioMediaRecorder | None = None
    recording_paused: bool = False
    on_hold: bool = False
    deadline: float | None = None  # an originated call that nobody answers by then is given up
    done: bool = False
    garbage: list[Any] = field(default_factory=list)


class Worker:
    def __init__(self, port: int, proxy: str, log_level: int = 0) -> None:
        self.port, self.proxy = port, proxy
        self.work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.calls: dict[str, CallState] = {}
        self.by_leg: dict[int, CallState] = {}
        self.serial = itertools.count(1)
        self.running = True
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = 1000
        cfg.uaConfig.userAgent = "Kakehashi media"
        cfg.medConfig.threadCnt = 0
        cfg.medConfig.hasIoqueue = False
        cfg.medConfig.maxMediaPorts = 2500
        cfg.medConfig.noVad = True
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        cfg.logConfig.level = log_level
        cfg.logConfig.consoleLevel = log_level
        self.ep.libInit(cfg)
        self.ep.audDevManager().setNullDev()
        transport = pj.TransportConfig()
        transport.port = port
        transport.boundAddress = "127.0.0.1"
        transport.publicAddress = "127.0.0.1"
        self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        self.ep.libStart()
        account = pj.AccountConfig()
        account.idUri = f"sip:cti@127.0.0.1:{port}"
        account.sipConfig.proxies.append(f"sip:{proxy};lr")
        account.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        account.mediaConfig.transportConfig.publicAddress = "127.0.0.1"
        self.account = Inbound(self)
        self.account.create(account, True)

    # -- the loop -----------------------------------------------------------------------------------------
    def later(self, work: Callable[[], None]) -> None:
        self.work.put(work)

    def run(self) -> None:
        threading.Thread(target=self._read_commands, name="commands", daemon=True).start()
        emit("ready", port=self.port)
        while self.running:
            self.ep.libHandleEvents(5)
            while True:
                try:
                    job = self.work.get_nowait()
                except queue.Empty:
                    break
                try:
                    job()
                except pj.Error as exc:
                    emit("error", message=f"{exc.title}: {exc.reason}")
            self._expire()
        self.ep.hangupAllCalls()
        for _ in range(50):
            self.ep.libHandleEvents(10)
        self.ep.libDestroy()

    def _read_commands(self) -> None:
        for line in sys.stdin:
            if line.strip():
                command = json.loads(line)
                self.later(lambda c=command: self.command(c))  # type: ignore[misc]
        self.later(self.stop)

    def stop(self) -> None:
        self.running = False

    def _expire(self) -> None:
        now = time.monotonic()
        for call in list(self.calls.values()):
            if call.deadline is not None and now >= call.deadline and not call.answered:
                call.deadline = None
                self._hangup_leg(call.customer, 408)

    # -- commands -----------------------------------------------------------------------------------------
    def command(self, c: dict[str, Any]) -> None:
        name = c["cmd"]
        if name == "quit":
            self.stop()
            return
        if name == "originate":
            self.originate(c["ref"], c["to"], c["caller_id"], float(c.get("timeout_s", 30)))
            return
        call = self.calls.get(c.get("ref", ""))
        if call is None or call.done:
            emit("error", ref=c.get("ref"), message=f"{name}: no such call")
            return
        match name:
            case "ringing":
                self._answer(call.customer, 180)
            case "answer":
                self._answer(call.customer, 200)
            case "reject":
                self._hangup_leg(call.customer, int(c.get("code", 404)))
            case "play":
                self.play(call, c["file"], bool(c.get("loop", False)), after=bool(c.get("after", False)))
            case "stop_play":
                self._stop_player(call)
            case "connect_agent":
                self.connect_agent(call, c["agent"], c.get("caller_id") or "")
            case "drop_agent":
                self._drop_agent(call)
            case "hold":
                self.hold(call, bool(c["on"]), c.get("music"))
            case "record":
                self.record(call, c["state"], c.get("file"))
            case "hangup":
                self._drop_agent(call)
                self._hangup_leg(call.customer, 200)
            case _:
                emit("error", ref=call.ref, message=f"unknown command {name}")

    def _answer(self, leg: Leg, code: int) -> None:
        prm = pj.CallOpParam()
        prm.statusCode = code
        leg.answer(prm)

    def _hangup_leg(self, leg: Leg, code: int) -> None:
        prm = pj.CallOpParam()
        prm.statusCode = code
        with contextlib.suppress(pj.Error):  # already disconnected
            leg.hangup(prm)

    def _new_leg(self, to: str, caller_id: str) -> Leg:
        leg = Leg(self, self.account)
        prm = pj.CallOpParam(True)
        if caller_id:
            prm.txOption.localUri = f"sip:{caller_id}@127.0.0.1:{self.port}"
        leg.makeCall(f"sip:{to}@{self.proxy}", prm)
        return leg

    def incoming(self, leg: Leg) -> None:
        info = leg.getInfo()
        call = CallState(ref=f"sip-{next(self.serial)}", customer=leg, inbound=True)
        leg.ref = call.ref
        self.calls[call.ref] = call
        self.by_leg[id(leg)] = call
        emit("incoming", ref=call.ref, ani=uri_user(info.remoteUri), dnis=uri_user(info.localUri),
             sip_call_id=info.callIdString)  # fmt: skip

    def originate(self, ref: str, to: str, caller_id: str, timeout_s: float) -> None:
        leg = self._new_leg(to, caller_id)
        leg.ref = ref
        call = CallState(ref=ref, customer=leg, inbound=False, deadline=time.monotonic() + timeout_s)
        self.calls[ref] = call
        self.by_leg[id(leg)] = call

    def play(self, call: CallState, path: str, loop: bool, *, after: bool = False) -> None:
        """Play a WAV to the customer: now (replacing what plays), or ``after`` what is queued — prompts of an
        IVR are heard one after the other. A looped file (music) plays until something replaces it."""
        if not after:
            self._stop_player(call)
        call.playlist.append((path, loop))
        if call.player is None:
            self._next_prompt(call)

    def _next_prompt(self, call: CallState) -> None:
        if call.customer.audio is None or not call.playlist:
            return  # media not up yet: media_ready starts the list
        path, loop = call.playlist.popleft()
        player = Player(lambda: self.later(lambda: self._played(call, player)))
        player.createPlayer(path, 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(call.customer.audio)
        call.player = player

    def _played(self, call: CallState, player: Player) -> None:
        if call.player is player:
            self._drop_player(call)
            if call.playlist:
                self._next_prompt(call)
            else:
                emit("play_done", ref=call.ref)

    def _stop_player(self, call: CallState) -> None:
        call.playlist.clear()
        self._drop_player(call)

    def _drop_player(self, call: CallState) -> None:
        if call.player is not None:
            if call.customer.audio is not None:
                with contextlib.suppress(pj.Error):
                    call.player.stopTransmit(call.customer.audio)
            call.garbage.append(call.player)  # deleting a player inside its own callback crashes PJSIP
            call.player = None

    def connect_agent(self, call: CallState, agent: str, caller_id: str) -> None:
        """Ring ``agent`` for this call (besides any agent already ringing: ring-all); the first to answer
        is bridged to the customer and the others stop ringing."""
        if agent in call.ringing:
            return
        leg = self._new_leg(agent, caller_id)
        leg.ref = call.ref
        call.ringing[agent] = leg
        self.by_leg[id(leg)] = call

    def _drop_agent(self, call: CallState) -> None:
        """Stop ringing agents and take the answered one off the call (park, transfer, hang-up)."""
        legs = list(call.ringing.values())
        call.ringing.clear()
        if call.agent_leg is not None:
            self._unbridge(call, call.agent_leg)
            legs.append(call.agent_leg)
            call.agent_leg, call.agent = None, None
        for leg in legs:
            self._hangup_leg(leg, 487)
            call.garbage.append(leg)

    def _bridge(self, call: CallState) -> None:
        a, b = call.customer.audio, call.agent_leg.audio if call.agent_leg else None
        if a is None or b is None or call.bridged:
            return
        self._stop_player(call)
        a.startTransmit(b)
        b.startTransmit(a)
        call.bridged = True
        if call.recorder is not None and not call.recording_paused:
            b.startTransmit(call.recorder)

    def _unbridge(self, call: CallState, leg: Leg) -> None:
        if not call.bridged:
            return
        call.bridged = False
        a, b = call.customer.audio, leg.audio
        for src, dst in ((a, b), (b, a), (b, call.recorder)):
            if src is not None and dst is not None:
                with contextlib.suppress(pj.Error):
                    src.stopTransmit(dst)

    def hold(self, call: CallState, on: bool, music: str | None) -> None:
        if on == call.on_hold:
            return
        call.on_hold = on
        leg = call.agent_leg
        if on:
            if leg is not None:
                self._unbridge(call, leg)
            if music:
                self.play(call, music, loop=True)
        else:
            self._stop_player(call)
            self._bridge(call)

    def record(self, call: CallState, state: str, path: str | None) -> None:
        if state == "started" and call.recorder is None and path:
            recorder = pj.AudioMediaRecorder()
            recorder.createRecorder(path)
            call.recorder = recorder
            self._feed_recorder(call, True)
        elif state == "paused" and call.recorder is not None and not call.recording_paused:
            self._feed_recorder(call, False)
            call.recording_paused = True
        elif state == "resumed" and call.recorder is not None and call.recording_paused:
            call.recording_paused = False
            self._feed_recorder(call, True)
        elif state == "stopped" and call.recorder is not None:
            self._feed_recorder(call, False)
            call.garbage.append(call.recorder)
            call.recorder = None
        else:
            return
        emit("recording", ref=call.ref, state=state, file=path)

    def _feed_recorder(self, call: CallState, on: bool) -> None:
        sources = [call.customer.audio]
        if call.bridged and call.agent_leg is not None:
            sources.append(call.agent_leg.audio)
        for source in sources:
            if source is None or call.recorder is None:
                continue
            with contextlib.suppress(pj.Error):
                (source.startTransmit if on else source.stopTransmit)(call.recorder)

    # -- what PJSIP tells us --------------------------------------------------------------------------------
    def media_ready(self, leg: Leg) -> None:
        call = self.by_leg.get(id(leg))
        if call is None:
            return
        if leg is call.customer:
            if call.player is None:
                self._next_prompt(call)
            if call.recorder is not None and not call.recording_paused and leg.audio is not None:
                leg.audio.startTransmit(call.recorder)
        if call.agent_leg is not None and not call.on_hold:
            self._bridge(call)

    def dtmf(self, leg: Leg, digit: str) -> None:
        call = self.by_leg.get(id(leg))
        if call is not None and leg is call.customer:
            emit("dtmf", ref=call.ref, digit=digit)

    def leg_state(self, leg: Leg, state: int, code: int) -> None:
        call = self.by_leg.get(id(leg))
        if call is None:
            return
        if leg is call.customer:
            self._customer_state(call, state, code)
        elif leg is call.agent_leg or leg in call.ringing.values():
            self._agent_state(call, leg, state, code)
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.by_leg.pop(id(leg), None)  # a dropped agent leg is gone

    def _customer_state(self, call: CallState, state: int, code: int) -> None:
        if state == pj.PJSIP_INV_STATE_CONFIRMED and not call.answered:
            call.answered = True
            call.deadline = None
            emit("answered", ref=call.ref, by="system" if call.inbound else "remote")
        elif state == pj.PJSIP_INV_STATE_EARLY and not call.inbound and code in (180, 183):
            emit("remote_ringing", ref=call.ref)
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED and not call.done:
            call.done = True
            self._drop_agent(call)
            if call.recorder is not None:
                self.record(call, "stopped", None)
            self._stop_player(call)
            outcome = "normal" if call.answered else FAILURE_NAMES.get(code, "failed")
            emit("ended", ref=call.ref, code=code, answered=call.answered, outcome=outcome)
            self.later(lambda: self._forget(call))

    def _agent_state(self, call: CallState, leg: Leg, state: int, code: int) -> None:
        ringing_agent = next((a for a, ringing in call.ringing.items() if ringing is leg), None)
        agent = call.agent if leg is call.agent_leg else ringing_agent
        if state == pj.PJSIP_INV_STATE_EARLY and code in (180, 183):
            emit("agent_ringing", ref=call.ref, agent=agent)
        elif state == pj.PJSIP_INV_STATE_CONFIRMED and leg is not call.agent_leg:
            call.ringing.pop(agent or "", None)
            if call.agent_leg is not None:  # another agent of a ring-all answered first
                self._hangup_leg(leg, 200)
                return
            others = list(call.ringing.values())
            call.ringing.clear()
            for other in others:
                self._hangup_leg(other, 487)
                call.garbage.append(other)
            call.agent, call.agent_leg = agent, leg
            emit("agent_answered", ref=call.ref, agent=agent)
            self._bridge(call)
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.by_leg.pop(id(leg), None)
            call.garbage.append(leg)
            if leg is call.agent_leg:  # the agent hung up: the call is over
                self._unbridge(call, leg)
                call.agent_leg = None
                emit("agent_hungup", ref=call.ref, agent=agent, code=code)
                self._hangup_leg(call.customer, 200)
            else:
                call.ringing.pop(agent or "", None)
                emit("agent_failed", ref=call.ref, agent=agent, code=code)

    def _forget(self, call: CallState) -> None:
        self.calls.pop(call.ref, None)
        self.by_leg.pop(id(call.customer), None)
        call.garbage.clear()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="SIP port on 127.0.0.1")
    parser.add_argument("--proxy", required=True, help="Kamailio's host:port (outgoing calls go through it)")
    parser.add_argument("--log-level", type=int, default=0)
    args = parser.parse_args(argv)
    _Events.out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    Worker(args.port, args.proxy, args.log_level).run()


if __name__ == "__main__":
    main()
