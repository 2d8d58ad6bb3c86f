"""The CTI's own SIP endpoint: a back-to-back user agent on PJSIP (pjsua2), run as its own process.

Calls to the center's numbers end here (Kamailio sends them); calls to agents and customers leave from here
through Kamailio. Each call is a customer leg plus at most one agent leg, joined in PJSIP's conference
bridge; prompts and hold music are WAV players, a recording is a WAV recorder listening to both legs. Two more
kinds of leg may join a call: the **consultation** leg of an attended transfer (the agent talks to a colleague
while the customer hears music; completed, it becomes the call's agent leg) and **listeners** (a supervisor's
phone that hears the customer and the agents and is heard by nobody: silent monitor).
What to do is decided elsewhere: the parent process (``SipDriver``) sends commands as JSON lines on stdin
and reads events as JSON lines on stdout (ADR 0013). Why a process of its own: PJSIP wants to own its
threads, a crash here does not take the web app down, and this GPL library is never loaded into Kakehashi.

Everything PJSIP does happens on this process's main thread: ``threadCnt=0`` for SIP and media, and the loop
polls ``libHandleEvents``. Callbacks only queue work; stdin is read by a thread that only queues commands.

**Capacity.** The ``pjsua2-python`` wheel is built with ``PJSUA_MAX_CALLS = 4``: one process holds at most four
SIP dialogs, a customer's leg and its agents' legs included. So the CTI runs a pool of these workers
(``SipDriver``; Kamailio's ``dispatcher`` spreads calls over them) and each worker takes at most ``--max-calls``
customer calls (2), keeping a dialog free for each call's agent leg: an INVITE it cannot take that way is
refused with 503 (Kamailio then tries the next worker), a ring beyond the dialogs left fails as
``agent_failed`` 503, and an ``originate`` with no room answers ``full`` (the driver tries another worker).
The worker counts dialogs, not calls: a consultation or a listener takes a dialog that is free and not kept for
another call's agent leg — always there for a worker's only call (customer, agent, colleague, supervisor: 4),
not while a second call of the worker has its agent (then it ends at once: ``consult_ended`` / ``monitor_ended``
with code 503). ``--max-calls 1`` guarantees the room (docs/telephony.md, "Capacity").

**Idle cost.** With no call up the loop polls PJSIP for up to a second; a command from stdin (or a callback from
PJSIP's media clock thread) wakes it at once with a CRLF keep-alive datagram sent to the worker's own SIP port,
which PJSIP's transport layer drops without a log line (RFC 5626 keep-alive).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import pjsua2 as pj  # type: ignore[import-not-found,import-untyped,unused-ignore]

from kakehashi.telephony.drivers.sip.legs import (
    CallState,
    Dialog,
    Inbound,
    Leg,
    LegGone,
    Player,
    _Events,
    emit,
    uri_user,
)
from kakehashi.telephony.drivers.sip.outcomes import FAILURE_NAMES

#: SIP dialogs one process can hold: PJSUA_MAX_CALLS of the ``pjsua2-python`` wheel (``maxCalls`` cannot raise it).
DIALOGS = 4
#: Customer calls a worker takes by default (each keeps a dialog for its agent leg).
MAX_CALLS = 2
IDLE_POLL_MS = 1000  # no call up: commands wake the loop (see ``Worker.later``), PJSIP's timers bound the wait
BUSY_POLL_MS = 10  # calls up: RTP wakes the loop anyway; this bounds PJSIP's deferred jobs and the deadlines
#: Calls up: after each poll the loop sleeps this long, so one poll takes the RTP packets of all legs at once
#: (PJSIP reads every queued packet of a socket) instead of one turn of Python per packet — a worker's CPU
#: is mostly that per-turn cost. Media is clocked by PJSIP's own thread and jitter buffers; SIP and commands
#: wait this much longer at most.
BATCH_S = 0.01
TICK_S = 0.1  # deadlines, ended dialogs and the load report: ten times a second, not at every RTP packet
#: A ring with no dialog free waits this long for one (the BYE of the agent leg just dropped by a transfer
#: holds its slot until answered, a few ms) before it fails as ``agent_failed`` 503.
RING_WAIT_S = 2.0
WAKE = b"\r\n\r\n"  # a SIP keep-alive: PJSIP's transport skips it


class Worker:
    def __init__(
        self,
        port: int,
        proxy: str,
        log_level: int = 0,
        *,
        max_calls: int = MAX_CALLS,
        dialogs: int = DIALOGS,
        ref_prefix: str = "sip-",
    ) -> None:
        self.port, self.proxy = port, proxy
        self.max_calls, self.dialogs, self.ref_prefix = max_calls, dialogs, ref_prefix
        self.work: deque[Callable[[], None]] = deque()  # append/popleft are atomic: the queue between threads
        self._next_tick = 0.0
        self.calls: dict[str, CallState] = {}
        self.by_leg: dict[Leg, CallState] = {}
        self.legs: set[Leg] = set()  # every dialog not yet disconnected (what counts against ``dialogs``)
        self.dialogs_alive: set[Dialog] = set()  # PJSIP's side of every leg not yet deleted (see ``Dialog``)
        self.graveyard: list[Dialog] = []  # ended dialogs, deleted by ``_sweep`` once their slot is free
        self.lingering = 0  # ended dialogs whose slot PJSIP still holds (their BYE not yet answered)
        self.waiting_rings: dict[tuple[str, str], tuple[float, str]] = {}  # (call, agent) → (until, caller id)
        self.serial = itertools.count(1)
        self.running = True
        self._main = threading.main_thread()
        self._wake = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._asleep = False  # the loop is (or is about to be) in a long poll
        self._load: tuple[int, int] = (-1, -1)
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = dialogs
        cfg.uaConfig.userAgent = "Kakehashi media"
        cfg.medConfig.threadCnt = 0
        cfg.medConfig.hasIoqueue = False
        cfg.medConfig.maxMediaPorts = 16 * dialogs  # legs, players, recorders
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
        """Queue work for the main loop; from another thread (stdin, PJSIP's clock), wake the loop's poll."""
        self.work.append(work)
        if self._asleep and threading.current_thread() is not self._main:
            self._asleep = False
            with contextlib.suppress(OSError):
                self._wake.sendto(WAKE, ("127.0.0.1", self.port))

    def run(self) -> None:
        """The loop. With calls up it turns at every RTP packet (hundreds of times a second), so what it does
        each turn is kept to polling PJSIP and running queued work; the rest runs on a 100 ms tick."""
        threading.Thread(target=self._read_commands, name="commands", daemon=True).start()
        emit("ready", port=self.port, max_calls=self.max_calls, dialogs=self.dialogs)
        work, handle = self.work, self.ep.libHandleEvents
        while self.running:
            idle = not self.calls and not self.legs and not self.graveyard
            if idle:
                self._asleep = True  # set before looking at the queue: a job queued after this look wakes us
                handle(0 if work else IDLE_POLL_MS)
                self._asleep = False
            else:
                handle(BUSY_POLL_MS)
            if work:
                self._run_jobs()
            now = time.monotonic()
            if now >= self._next_tick:
                self._expire(now)
                self._sweep()
                if self.waiting_rings:
                    self._retry_rings(now)
                self._next_tick = now + (TICK_S / 5 if self.waiting_rings else TICK_S)
                self._report_load()
            if not idle:
                time.sleep(BATCH_S)
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

    def _bury(self, leg: Leg) -> None:
        if leg.dialog is not None:
            self.graveyard.append(leg.dialog)
            self.lingering += 1  # until the sweep sees its slot free
            leg.dialog = None  # Leg → Dialog only: the sweep's drop is the last reference

    def _sweep(self) -> None:
        """Delete ended dialogs whose call slot is free (see ``Dialog``): safe here, on the main thread between
        two polls, where no call is being set up. Count those whose slot PJSIP still holds."""
        if not self.graveyard:
            self.lingering = 0
            return
        keep, lingering = [], 0
        for dialog in self.graveyard:
            if dialog.holds_slot():
                lingering += 1
                keep.append(dialog)
            elif dialog.isActive():  # the slot holds a newer call: ~Call() would hang it up; later
                keep.append(dialog)
            else:
                self.dialogs_alive.discard(dialog)
        self.graveyard, self.lingering = keep, lingering

    # -- capacity -----------------------------------------------------------------------------------------
    def customers(self) -> int:
        return sum(1 for call in self.calls.values() if not call.done)

    def _reserved(self, but: CallState | None = None) -> int:
        """Dialogs kept for the agent legs of calls that have none yet (one each)."""
        return sum(1 for call in self.calls.values()
                   if call is not but and not call.done and call.agent_leg is None and not call.ringing)  # fmt: skip

    def dialogs_in_use(self) -> int:
        """Call slots PJSIP holds: live legs, and ended ones whose BYE is still under way."""
        return len(self.legs) + self.lingering

    def room_for_customer(self) -> bool:
        """Whether a new customer call fits: within ``max_calls``, with a dialog for it and one for its agent
        (besides the one kept for each call still without an agent)."""
        return self.customers() < self.max_calls and self.dialogs_in_use() + 2 + self._reserved() <= self.dialogs

    def room_for_agent(self, call: CallState) -> bool:
        return self.dialogs_in_use() + 1 + self._reserved(but=call) <= self.dialogs

    def _report_load(self) -> None:
        load = (self.customers(), self.dialogs_in_use())
        if load != self._load:
            self._load = load
            emit("load", calls=load[0], dialogs=load[1])

    def _run_jobs(self) -> None:
        work = self.work
        while work:
            job = work.popleft()
            try:
                job()
            except pj.Error as exc:
                emit("error", message=f"{exc.title}: {exc.reason}")
            except LegGone as exc:
                emit("error", message=str(exc))
        self._report_load()  # jobs change calls and dialogs: the driver places outbound calls by this

    def _expire(self, now: float) -> None:
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
                call.answer_sent = True
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
            case "consult":
                self.consult(call, c["agent"], c.get("caller_id") or "", c.get("music"))
            case "complete_consult":
                self.complete_consult(call)
            case "cancel_consult":
                self._consult_over(call, "normal", 0)
            case "monitor":
                self.monitor(call, c["listener"], c.get("caller_id") or "")
            case "stop_monitor":
                self._monitor_over(call, c["listener"], 0)
            case "record":
                self.record(call, c["state"], c.get("file"))
            case "hangup":
                self._consult_over(call, "normal", 0, caller_gone=True)  # the caller does not come back
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
        """A new outgoing dialog (raises ``pj.Error``, e.g. PJ_ETOOMANY, when PJSIP cannot make it)."""
        leg = Leg(self, self.account)
        prm = pj.CallOpParam(True)
        if caller_id:
            prm.txOption.localUri = f"sip:{caller_id}@127.0.0.1:{self.port}"
        try:
            leg.makeCall(f"sip:{to}@{self.proxy}", prm)
        except pj.Error:
            self._bury(leg)
            raise
        self.legs.add(leg)
        return leg

    def incoming(self, leg: Leg) -> None:
        """An INVITE (called inside PJSIP's callback). Refused with 503 when this worker is full: Kamailio
        passes the call to the next worker."""
        room = self.room_for_customer()  # before counting this leg: room for it and its agent's
        self.legs.add(leg)
        info = leg.getInfo()
        if leg.dialog is not None:
            leg.dialog.sip_call_id = info.callIdString
        if not room:
            calls, dialogs = self.customers(), self.dialogs_in_use()
            emit("refused", code=503, calls=calls, dialogs=dialogs, sip_call_id=info.callIdString)
            self._hangup_leg(leg, 503)
            return
        call = CallState(ref=f"{self.ref_prefix}{next(self.serial)}", customer=leg, inbound=True)
        leg.ref = call.ref
        self.calls[call.ref] = call
        self.by_leg[leg] = call
        emit("incoming", ref=call.ref, ani=uri_user(info.remoteUri), dnis=uri_user(info.localUri),
             sip_call_id=info.callIdString)  # fmt: skip

    def originate(self, ref: str, to: str, caller_id: str, timeout_s: float) -> None:
        if ref in self.calls:
            emit("error", ref=ref, message="originate: the call exists")
            return
        if not self.room_for_customer():
            # The driver tries another worker.
            emit("full", ref=ref, calls=self.customers(), dialogs=self.dialogs_in_use())
            return
        try:
            leg = self._new_leg(to, caller_id)
        except pj.Error as exc:
            emit("full", ref=ref, calls=self.customers(), dialogs=self.dialogs_in_use(), message=exc.reason)
            return
        leg.ref = ref
        call = CallState(ref=ref, customer=leg, inbound=False, deadline=time.monotonic() + timeout_s)
        self.calls[ref] = call
        self.by_leg[leg] = call

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
        if agent in call.ringing or call.done:
            return
        if not self._ring(call, agent, caller_id):  # no dialog free now: wait a little for one
            self.waiting_rings[(call.ref, agent)] = (time.monotonic() + RING_WAIT_S, caller_id)

    def _ring(self, call: CallState, agent: str, caller_id: str) -> bool:
        if not self.room_for_agent(call):
            return False
        try:
            leg = self._new_leg(agent, caller_id)
        except pj.Error:  # PJ_ETOOMANY: a slot our count thought free is not yet
            return False
        leg.ref = call.ref
        call.ringing[agent] = leg
        self.by_leg[leg] = call
        return True

    def _retry_rings(self, now: float) -> None:
        for (ref, agent), (until, caller_id) in list(self.waiting_rings.items()):
            call = self.calls.get(ref)
            if call is None or call.done or agent in call.ringing or self._ring(call, agent, caller_id):
                del self.waiting_rings[(ref, agent)]  # gone, or ringing now
            elif now >= until:
                del self.waiting_rings[(ref, agent)]
                emit("agent_failed", ref=ref, agent=agent, code=503, reason="no SIP dialog free in this worker")

    def _cancel_rings(self, call: CallState) -> None:
        for key in [key for key in self.waiting_rings if key[0] == call.ref]:
            del self.waiting_rings[key]

    def _drop_agent(self, call: CallState) -> None:
        """Stop ringing agents and take the answered one off the call (park, transfer, hang-up), with the
        colleague they were consulting."""
        self._consult_over(call, "normal", 0)
        self._cancel_rings(call)
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
        self._feed_listeners(call)

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
        if on == call.on_hold or call.consult is not None:  # a consultation holds the caller until it ends
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

    # -- attended transfer: the consultation leg ------------------------------------------------------------
    def consult(self, call: CallState, agent: str, caller_id: str, music: str | None) -> None:
        """The caller holds (``music``) and the call's agent is joined to ``agent``, rung on a new leg; the
        colleague's phone shows ``caller_id`` (the agent who calls). No agent on the call, or no dialog free
        in this worker: the consultation ends at once (``consult_ended``) and the caller is back."""
        if call.consult is not None:
            emit("error", ref=call.ref, message=f"consult: {call.consult} is being consulted already")
            return
        self.hold(call, True, music)
        call.consult = agent
        if call.agent_leg is None:
            self._consult_over(call, "failed", 0, reason="no agent on the call")
            return
        if not self.room_for_agent(call):
            self._consult_over(call, "failed", 503, reason="no SIP dialog free in this worker")
            return
        try:
            leg = self._new_leg(agent, caller_id)
        except pj.Error as exc:  # PJ_ETOOMANY: a slot our count thought free is not yet
            self._consult_over(call, "failed", 503, reason=exc.reason)
            return
        leg.ref = call.ref
        call.consult_leg = leg
        self.by_leg[leg] = call

    def complete_consult(self, call: CallState) -> None:
        """The caller joins the colleague, whose leg becomes the call's agent leg (the recording goes on), and
        the first agent's leg is hung up."""
        leg, agent = call.consult_leg, call.consult
        if leg is None or agent is None or not call.consult_up:
            emit("error", ref=call.ref, message="complete_consult: no colleague on the line")
            return
        self._unbridge_consult(call)
        first = call.agent_leg
        if first is not None:
            self._unbridge(call, first)  # (not bridged: the caller holds)
            self._hangup_leg(first, 200)
            call.garbage.append(first)
        call.agent, call.agent_leg = agent, leg
        call.consult, call.consult_leg, call.consult_up = None, None, False
        emit("consult_completed", ref=call.ref, agent=agent)
        self.hold(call, False, None)  # caller ↔ colleague, and the recorder hears the colleague

    def _consult_over(
        self, call: CallState, cause: str, code: int, *, reason: str = "", caller_gone: bool = False
    ) -> None:
        """The consultation ends (``cause``: normal, busy, no_answer, invalid, failed): its leg is hung up and,
        unless the caller has gone (or is being hung up), the caller is back with the first agent."""
        agent, leg = call.consult, call.consult_leg
        if agent is None:
            return
        caller_gone = caller_gone or call.done
        self._unbridge_consult(call)
        call.consult, call.consult_leg, call.consult_up = None, None, False
        if leg is not None:
            self._hangup_leg(leg, 487)  # CANCEL while it rings, BYE once answered
            call.garbage.append(leg)
        emit("consult_ended", ref=call.ref, agent=agent, cause=cause, code=code, caller_gone=caller_gone,
             **({"reason": reason} if reason else {}))  # fmt: skip
        if not caller_gone:
            self.hold(call, False, None)

    def _bridge_consult(self, call: CallState) -> None:
        a = call.agent_leg.audio if call.agent_leg else None
        b = call.consult_leg.audio if call.consult_leg else None
        if a is None or b is None or call.consult_bridged or not call.consult_up:
            return
        a.startTransmit(b)
        b.startTransmit(a)
        call.consult_bridged = True
        self._feed_listeners(call)

    def _unbridge_consult(self, call: CallState) -> None:
        if not call.consult_bridged:
            return
        call.consult_bridged = False
        a = call.agent_leg.audio if call.agent_leg else None
        b = call.consult_leg.audio if call.consult_leg else None
        for src, dst in ((a, b), (b, a)):
            if src is not None and dst is not None:
                with contextlib.suppress(pj.Error):
                    src.stopTransmit(dst)

    def _consult_state(self, call: CallState, leg: Leg, state: int, code: int) -> None:
        if state == pj.PJSIP_INV_STATE_CONFIRMED and not call.consult_up:
            call.consult_up = True
            emit("consult_answered", ref=call.ref, agent=call.consult)
            self._bridge_consult(call)
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.by_leg.pop(leg, None)
            call.consult_leg = None  # gone: nothing to hang up
            call.garbage.append(leg)
            self._consult_over(call, "normal" if call.consult_up else FAILURE_NAMES.get(code, "failed"), code)

    # -- silent monitor: listeners ---------------------------------------------------------------------------
    def monitor(self, call: CallState, listener: str, caller_id: str) -> None:
        """Call ``listener`` (a supervisor's phone) to hear the call: the customer and the agents are sent to
        that leg, nothing of it to anyone. No dialog free: ``monitor_ended`` at once."""
        if listener in call.listeners:
            return
        if not self.room_for_agent(call):
            emit("monitor_ended", ref=call.ref, listener=listener, code=503, reason="no SIP dialog free in this worker")
            return
        try:
            leg = self._new_leg(listener, caller_id)
        except pj.Error as exc:
            emit("monitor_ended", ref=call.ref, listener=listener, code=503, reason=exc.reason)
            return
        leg.ref = call.ref
        call.listeners[listener] = leg
        self.by_leg[leg] = call

    def _monitor_over(self, call: CallState, listener: str, code: int) -> None:
        leg = call.listeners.pop(listener, None)
        if leg is None:
            return
        call.listening.discard(listener)
        self._hangup_leg(leg, 487)
        call.garbage.append(leg)
        emit("monitor_ended", ref=call.ref, listener=listener, code=code)

    def _feed_listeners(self, call: CallState) -> None:
        """Every voice of the call (customer, agent, a consulted colleague) to every listener that answered; a
        connection made before is left as it is (PJSIP's bridge ignores a repeated one)."""
        if not call.listening:
            return
        voices = [leg.audio for leg in (call.customer, call.agent_leg, call.consult_leg) if leg is not None]
        for listener in call.listening:
            ear = call.listeners[listener].audio
            if ear is None:
                continue
            for voice in voices:
                if voice is not None:
                    voice.startTransmit(ear)

    def _listener_state(self, call: CallState, listener: str, leg: Leg, state: int, code: int) -> None:
        if state == pj.PJSIP_INV_STATE_CONFIRMED and listener not in call.listening:
            call.listening.add(listener)
            emit("monitor_answered", ref=call.ref, listener=listener)
            self._feed_listeners(call)
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.by_leg.pop(leg, None)
            self._monitor_over(call, listener, code)

    def record(self, call: CallState, state: str, path: str | None, *, report: bool = True) -> None:
        """Start, pause, resume or stop the call's recording; ``report=False`` for the file's closing when the
        line drops (the hang-up says it all; the simulator reports no stop there either)."""
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
        if report:
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
        call = self.by_leg.get(leg)
        if call is None:
            return
        if leg is call.customer:
            if call.player is None:
                self._next_prompt(call)
            if call.recorder is not None and not call.recording_paused and leg.audio is not None:
                leg.audio.startTransmit(call.recorder)
        if call.agent_leg is not None and not call.on_hold:
            self._bridge(call)
        if call.consult_up:
            self._bridge_consult(call)
        self._feed_listeners(call)

    def dtmf(self, leg: Leg, digit: str) -> None:
        call = self.by_leg.get(leg)
        if call is not None and leg is call.customer:
            emit("dtmf", ref=call.ref, digit=digit)

    def leg_state(self, leg: Leg, state: int, code: int) -> None:
        if state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.legs.discard(leg)  # PJSIP has freed its dialog
            self._bury(leg)
        call = self.by_leg.get(leg)
        if call is None:
            return
        if leg is call.customer:
            self._customer_state(call, state, code)
        elif leg is call.agent_leg or leg in call.ringing.values():
            self._agent_state(call, leg, state, code)
        elif leg is call.consult_leg:
            self._consult_state(call, leg, state, code)
        elif (listener := next((n for n, lg in call.listeners.items() if lg is leg), None)) is not None:
            self._listener_state(call, listener, leg, state, code)
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.by_leg.pop(leg, None)  # a dropped agent leg is gone

    def _customer_state(self, call: CallState, state: int, code: int) -> None:
        if state == pj.PJSIP_INV_STATE_CONFIRMED and not call.answered:
            call.answered = True
            call.deadline = None
            emit("answered", ref=call.ref, by="system" if call.inbound else "remote")
        elif state == pj.PJSIP_INV_STATE_EARLY and not call.inbound and code in (180, 183):
            emit("remote_ringing", ref=call.ref)
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED and not call.done:
            call.done = True
            self._drop_agent(call)  # and the consultation
            for listener in list(call.listeners):
                self._monitor_over(call, listener, 0)
            if call.recorder is not None:
                self.record(call, "stopped", None, report=False)
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
            self._cancel_rings(call)
            for other in others:
                self._hangup_leg(other, 487)
                call.garbage.append(other)
            call.agent, call.agent_leg = agent, leg
            if call.inbound and not call.answered:
                call.answered = True
                if call.answer_sent:  # our 200 to the caller stands; their ACK is late (a busy machine): say so now
                    emit("answered", ref=call.ref, by="system")
                else:  # routed straight to an agent: answered by the agent (no "answered" event, as the simulator)
                    self._answer(call.customer, 200)
            emit("agent_answered", ref=call.ref, agent=agent)
            self._bridge(call)
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.by_leg.pop(leg, None)
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
        self.by_leg.pop(call.customer, None)
        call.garbage.clear()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="SIP port on 127.0.0.1")
    parser.add_argument("--proxy", required=True, help="Kamailio's host:port (outgoing calls go through it)")
    parser.add_argument("--log-level", type=int, default=0)
    parser.add_argument("--max-calls", type=int, default=MAX_CALLS, help="customer calls this worker takes")
    parser.add_argument("--dialogs", type=int, default=DIALOGS, help="SIP dialogs PJSIP holds (PJSUA_MAX_CALLS)")
    parser.add_argument("--ref-prefix", default="sip-", help="call references of incoming calls: <prefix><n>")
    args = parser.parse_args(argv)
    _Events.out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    worker = Worker(args.port, args.proxy, args.log_level, max_calls=args.max_calls, dialogs=args.dialogs,
                    ref_prefix=args.ref_prefix)  # fmt: skip
    worker.run()
    # PJSIP is destroyed: leave before the interpreter deletes the dialogs still referenced (their ~Call()
    # would talk to a library that is gone).
    with contextlib.suppress(OSError, ValueError):
        _Events.out.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
