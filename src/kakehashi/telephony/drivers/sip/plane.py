"""The CTI's SIP endpoint on rtpengine's media plane: a back-to-back user agent that only signals (ADR 0024).

Calls to the center's numbers end here (Kamailio's dispatcher sends them); calls to agents and customers leave
from here through Kamailio, as with the PJSIP media workers (``sip.media``), and the parent (``SipDriver``) talks
to this process with the same JSON lines: commands on stdin, events on stdout. The difference is where the audio
goes: **nowhere near this process.** rtpengine relays each call between the customer and the CTI side
(``plane_media.MediaCall``); this process tells it who is on the CTI side (nobody, an agent), what to play
(prompts, music) and when to record, and reads the caller's keys from rtpengine's DTMF log. SIP signalling is
aiosipua's (transactions, dialogs, retransmission of our 200 OK until the ACK) on one asyncio loop, so one
process holds every call of a center; its cost is a few messages per call, not fifty packets a second per leg.

Attended transfer: ``plane_consult``; silent monitor: ``plane_monitor``; answering-machine detection on outbound
calls placed with it: ``plane_amd``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosipua import IncomingCall, OutgoingCall, parse_sdp, serialize_sdp
from aiosipua.dialog import DialogState
from aiosipua.message import SipRequest

from kakehashi.telephony.amd import AmdSettings
from kakehashi.telephony.drivers.sip import plane_amd, plane_consult, plane_monitor
from kakehashi.telephony.drivers.sip.ng import NgClient, NgError
from kakehashi.telephony.drivers.sip.outcomes import FAILURE_NAMES
from kakehashi.telephony.drivers.sip.plane_consult import Consultation
from kakehashi.telephony.drivers.sip.plane_media import MediaCall, answer_direction
from kakehashi.telephony.drivers.sip.plane_monitor import Listener
from kakehashi.telephony.drivers.sip.plane_recording import RecordingJobs
from kakehashi.telephony.drivers.sip.plane_sip import (
    PeriodicPruning,
    PlaneTransport,
    PlaneUac,
    PlaneUas,
    adopt_incoming,
    forget_incoming,
)

log = logging.getLogger("kakehashi.plane")
_URI_USER = re.compile(r"sips?:([^@;>]+)@")
#: Customer calls one process takes (a 503 beyond it: Kamailio tries another worker, if any).
MAX_CALLS = 2000
LOAD_EVERY_S = 0.2
RTPENGINE_PING_S = 1.0
RTPENGINE_LOST_AFTER = 3  # missed pings (each retried by the ng client): ~6 s without rtpengine


def uri_user(uri: str) -> str:
    found = _URI_USER.search(uri)
    return found.group(1) if found else ""


class _Out:
    stream: Any = sys.stdout
    flush_queued = False


def emit(event: str, **fields: Any) -> None:
    """An event for the driver. Written at once, flushed once per turn of the loop: the events of a turn (a call's
    answer, its recording, its ringing…) leave in one write instead of one system call each."""
    _Out.stream.write(json.dumps({"ev": event, **fields}, ensure_ascii=False) + "\n")
    if _Out.flush_queued:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # outside the loop (start, end): now
        _Out.stream.flush()
        return
    _Out.flush_queued = True
    loop.call_soon(_flush)


def _flush() -> None:
    _Out.flush_queued = False
    _Out.stream.flush()


@dataclass(eq=False)
class Call:
    """One customer call: its customer leg (incoming or outgoing), the agent legs, rtpengine's side."""

    ref: str
    inbound: bool
    media: MediaCall
    incoming: IncomingCall | None = None
    outgoing: OutgoingCall | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    offered: asyncio.Event = field(default_factory=asyncio.Event)  # rtpengine has the customer's offer
    answered: bool = False
    answer_sent: bool = False
    done: bool = False
    agent: str | None = None
    agent_leg: OutgoingCall | None = None
    ringing: dict[str, OutgoingCall] = field(default_factory=dict)
    playlist: deque[tuple[str, bool]] = field(default_factory=deque)
    play_timer: asyncio.TimerHandle | None = None
    playing: bool = False
    on_hold: bool = False
    record_file: str | None = None
    record_paused: bool = False
    deadline: asyncio.TimerHandle | None = None
    agent_sdp: str = ""  # the agent's phone's SDP (where its audio comes from)
    consultation: Consultation | None = None
    listeners: dict[str, Listener] = field(default_factory=dict)  # supervisors listening (silent monitor)
    amd: AmdSettings | None = None  # placed with answering-machine detection: the answer waits for its verdict
    detection: plane_amd.Detection | None = None  # the analysis going on (``plane_amd``)

    @property
    def sip_call_id(self) -> str:
        leg = self.incoming or self.outgoing
        return leg.call_id if leg is not None else ""


class Plane:
    """The process: SIP on ``port``, rtpengine's ng on ``ng``, DTMF events on ``dtmf_port``."""

    emit = staticmethod(emit)

    def __init__(
        self,
        port: int,
        proxy: str,
        ng: tuple[str, int],
        *,
        dtmf_port: int | None,
        recordings: RecordingJobs,
        ref_prefix: str = "sip-",
        max_calls: int = MAX_CALLS,
    ) -> None:
        host, _, proxy_port = proxy.partition(":")
        self.port, self.proxy, self.proxy_addr = port, proxy, (host, int(proxy_port or 5060))
        self.dtmf_port, self.recordings = dtmf_port, recordings
        self.ref_prefix, self.max_calls = ref_prefix, max_calls
        self.ng = NgClient(*ng)
        self.calls: dict[str, Call] = {}
        self.by_sip: dict[str, tuple[Call, str | None]] = {}  # SIP Call-ID → (call, agent or None: the customer)
        self.by_media: dict[str, Call] = {}
        self.consulting: dict[str, Call] = {}  # a consulted colleague's SIP Call-ID → the customer call
        self.listening: dict[str, tuple[Call, str]] = {}  # a supervisor's SIP Call-ID → (the call, the listener)
        self.serial = itertools.count(1)
        self.transport = PlaneTransport(local_addr=("127.0.0.1", port))
        self.uac = PlaneUac(self.transport)
        self.uas = PlaneUas(self.transport, uac=self.uac, user_agent="Kakehashi plane")
        self.uas.transactions = PeriodicPruning()
        self.stopping = asyncio.Event()
        self.media_up = True  # rtpengine answers (``_watch_rtpengine``): without it no media command is sent
        self._load: tuple[int, int] = (-1, -1)

    # -- the loop -------------------------------------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.uas.on_invite = self._on_invite
        self.uas.on_bye = self._on_bye
        self.uas.on_cancel = self._on_cancel
        self.uas.on_reinvite = self._on_reinvite
        self.uas.on_ack_timeout = self._on_ack_timeout
        await self.uas.start()
        await self.ng.start()
        if self.dtmf_port is not None:
            # reuse_port: a plane started while the previous one is still going down (a restart) binds too
            await loop.create_datagram_endpoint(lambda: _DtmfLog(self), local_addr=("127.0.0.1", self.dtmf_port),
                                                reuse_port=True)  # fmt: skip
        threading.Thread(target=self._read_commands, args=(loop,), name="commands", daemon=True).start()
        emit("ready", port=self.port, max_calls=self.max_calls, dialogs=self.max_calls * 3, engine="rtpengine")
        reporter = loop.create_task(self._report_load())
        watchdog = loop.create_task(self._watch_rtpengine())
        await self.stopping.wait()
        reporter.cancel()
        watchdog.cancel()
        for call in list(self.calls.values()):
            try:
                await self._hangup_all(call)
            except NgError as exc:  # stopping: every call is hung up, whatever rtpengine says
                emit("error", ref=call.ref, message=f"hangup: {exc}")
        await asyncio.sleep(0.2)  # the BYEs leave
        await self.recordings.drain()
        self.ng.close()
        await self.uas.stop()

    def _read_commands(self, loop: asyncio.AbstractEventLoop) -> None:
        for line in sys.stdin:
            if line.strip():
                loop.call_soon_threadsafe(self.spawn, self.command(json.loads(line)))
        loop.call_soon_threadsafe(self.stopping.set)

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        task.add_done_callback(_report_failure)

    async def _report_load(self) -> None:
        while True:
            load = (self.customers(), self.dialogs())
            if load != self._load:
                self._load = load
                emit("load", calls=load[0], dialogs=load[1])
            await asyncio.sleep(LOAD_EVERY_S)

    async def _watch_rtpengine(self) -> None:
        """rtpengine carries every call's audio: if it stops answering (it died), every call is silent. After
        ``RTPENGINE_LOST_AFTER`` missed pings every call ends as failed and both phones are hung up, rather than
        leave callers and agents on dead lines; calls that come later are answered again once rtpengine is back."""
        missed = 0
        while True:
            await asyncio.sleep(RTPENGINE_PING_S)
            try:
                reply = await self.ng.send("ping")
                missed = 0 if reply.get("result") == "pong" else missed + 1
            except NgError:
                missed += 1
            if missed == RTPENGINE_LOST_AFTER:
                lost = [call for call in self.calls.values() if not call.done]
                emit("error", message=f"rtpengine does not answer: {len(lost)} call(s) ended")
                self.media_up = False
                for call in lost:
                    async with call.lock:
                        await self._hangup_all(call, code=503)
            elif missed == 0:
                self.media_up = True

    def customers(self) -> int:
        return sum(1 for call in self.calls.values() if not call.done)

    def dialogs(self) -> int:
        return sum(
            1 + len(call.ringing) + (call.agent_leg is not None) + (call.consultation is not None) + len(call.listeners)
            for call in self.calls.values()
            if not call.done
        )

    # -- commands -------------------------------------------------------------------------------------------
    async def command(self, c: dict[str, Any]) -> None:
        name = c["cmd"]
        if name == "quit":
            self.stopping.set()
            return
        if name == "originate":
            await self.originate(c["ref"], c["to"], c.get("caller_id") or "", float(c.get("timeout_s", 30)),
                                 amd=c.get("amd"))  # fmt: skip
            return
        call = self.calls.get(c.get("ref", ""))
        if call is None or call.done:
            emit("error", ref=c.get("ref"), message=f"{name}: no such call")
            return
        async with call.lock:
            if call.done:
                return
            try:
                await self._run(call, name, c)
            except NgError as exc:
                emit("error", ref=call.ref, message=f"{name}: {exc}")

    async def _run(self, call: Call, name: str, c: dict[str, Any]) -> None:
        match name:
            case "ringing":
                if call.incoming is not None and not call.answer_sent:
                    call.incoming.ringing()
            case "answer":
                await self._answer(call)
            case "reject":
                if call.incoming is not None and not call.answer_sent:
                    call.incoming.reject(int(c.get("code", 404)))
                    await self._end(call, int(c.get("code", 404)))
            case "play":
                await self.play(call, c["file"], bool(c.get("loop", False)), after=bool(c.get("after", False)))
            case "stop_play":
                await self._stop_playing(call)
            case "connect_agent":
                await self.connect_agent(call, c["agent"], c.get("caller_id") or "")
            case "drop_agent":
                await self._drop_agent(call)
            case "hold":
                await self.hold(call, bool(c["on"]), c.get("music"))
            case "consult":
                await plane_consult.consult(self, call, c["agent"], c.get("caller_id") or "", c.get("music"))
            case "complete_consult":
                await plane_consult.complete(self, call)
            case "cancel_consult":
                await plane_consult.end(self, call, "normal", 0)
            case "monitor":
                await plane_monitor.start(self, call, c["listener"], c.get("caller_id") or "")
            case "stop_monitor":
                await plane_monitor.stop(self, call, c["listener"], 0)
            case "record":
                await self.record(call, c["state"], c.get("file"))
            case "hangup":
                await self._hangup_all(call)
            case _:
                emit("error", ref=call.ref, message=f"unknown command {name}")

    async def _answer(self, call: Call) -> None:
        if call.incoming is None or call.answer_sent:
            return
        await call.offered.wait()
        sdp = await call.media.answer_with_sink()
        call.incoming.accept(parse_sdp(sdp))
        call.answer_sent = True
        self.teardown_recipe(call, None, call.incoming)
        if not call.answered:
            call.answered = True
            emit("answered", ref=call.ref, by="system")
        if call.playlist and not call.playing:
            await self._next_prompt(call)

    # -- prompts --------------------------------------------------------------------------------------------
    async def play(self, call: Call, path: str, loop: bool, *, after: bool) -> None:
        """Play a WAV to the customer now, or ``after`` what is queued (an IVR's prompts one after the other)."""
        if not after:
            await self._stop_playing(call)
        call.playlist.append((path, loop))
        if not call.playing and call.answered:
            await self._next_prompt(call)

    async def _next_prompt(self, call: Call) -> None:
        if not call.playlist or call.done:
            return
        path, loop = call.playlist.popleft()
        seconds = await call.media.play(path, loop=loop)
        call.playing = True
        if not loop:
            call.play_timer = asyncio.get_running_loop().call_later(
                max(0.02, seconds), lambda: self.spawn(self._played(call))
            )

    async def _played(self, call: Call) -> None:
        async with call.lock:
            call.play_timer = None
            call.playing = False
            if call.done:
                return
            if call.playlist:
                await self._next_prompt(call)
            else:
                emit("play_done", ref=call.ref)

    async def _stop_playing(self, call: Call) -> None:
        call.playlist.clear()
        if call.play_timer is not None:
            call.play_timer.cancel()
            call.play_timer = None
        if call.playing:
            call.playing = False
            await call.media.stop_play()

    async def hold(self, call: Call, on: bool, music: str | None) -> None:
        if on == call.on_hold:
            return
        call.on_hold = on
        if on:
            await call.media.park()
            if music:
                await self.play(call, music, True, after=False)
        else:
            await self._stop_playing(call)
            if call.agent_leg is not None:
                await call.media.unpark()

    # -- agents ---------------------------------------------------------------------------------------------
    async def connect_agent(self, call: Call, agent: str, caller_id: str) -> None:
        """Ring ``agent`` (besides any agent already ringing: ring-all); the first to answer is bridged."""
        if agent in call.ringing:
            return
        if call.inbound:
            await call.offered.wait()
        leg = self.invite(agent, caller_id, call.media.toward_cti)
        call.ringing[agent] = leg
        self.by_sip[leg.call_id] = (call, agent)
        leg.on_ringing = lambda _leg: emit("agent_ringing", ref=call.ref, agent=agent)
        leg.on_answer = lambda answered: self.spawn(self._agent_answered(call, agent, answered))
        leg.on_rejected = lambda _leg, code, _reason: self.spawn(self._agent_failed(call, agent, code))

    def invite(self, to: str, caller_id: str, sdp: str) -> OutgoingCall:
        from_uri = f"sip:{caller_id or 'cti'}@127.0.0.1:{self.port}"
        return self.uac.send_invite(from_uri, f"sip:{to}@{self.proxy}", self.proxy_addr, parse_sdp(sdp),
                                    user_agent="Kakehashi plane")  # fmt: skip

    async def _agent_answered(self, call: Call, agent: str, leg: OutgoingCall) -> None:
        async with call.lock:
            if call.done or call.ringing.get(agent) is not leg:
                self.bye(leg)  # late: the call ended or another agent took it
                return
            del call.ringing[agent]
            for other_agent, other in list(call.ringing.items()):
                self.cancel(other)
                self.by_sip.pop(other.call_id, None)
                del call.ringing[other_agent]
            call.agent, call.agent_leg, call.agent_sdp = agent, leg, self.sdp_of(leg)
            self.teardown_recipe(call, agent, leg)
            if call.inbound and not call.answer_sent and call.incoming is not None:
                await call.offered.wait()  # routed straight to an agent: the agent's answer is the caller's
                sdp = await call.media.answer_with_sink()
                call.incoming.accept(parse_sdp(sdp))
                call.answer_sent = call.answered = True
                self.teardown_recipe(call, None, call.incoming)
            await self._stop_playing(call)
            answer = leg.sdp_answer
            if answer is not None:
                await call.media.attach(self.sdp_of(leg), inbound=call.inbound)
            emit("agent_answered", ref=call.ref, agent=agent)

    async def _agent_failed(self, call: Call, agent: str, code: int) -> None:
        async with call.lock:
            leg = call.ringing.pop(agent, None)
            if leg is not None:
                self.by_sip.pop(leg.call_id, None)
                if not call.done:
                    emit("agent_failed", ref=call.ref, agent=agent, code=code)

    async def _drop_agent(self, call: Call, *, caller_gone: bool = False) -> None:
        """Stop ringing agents and take the answered one off the call (park, transfer, hang-up), with the
        colleague they were consulting."""
        await plane_consult.end(self, call, "normal", 0, caller_gone=caller_gone)
        for agent, leg in list(call.ringing.items()):
            self.cancel(leg)
            self.by_sip.pop(leg.call_id, None)
            del call.ringing[agent]
        if call.agent_leg is not None:
            leg, call.agent_leg, call.agent = call.agent_leg, None, None
            self.by_sip.pop(leg.call_id, None)
            self.bye(leg)
            if not call.done and self.media_up:
                try:
                    await call.media.detach(inbound=call.inbound)
                except NgError as exc:  # the call goes on (or ends) without the sink; never leave it half-done
                    emit("error", ref=call.ref, message=f"detach: {exc}")

    # -- outbound -------------------------------------------------------------------------------------------
    async def originate(
        self, ref: str, to: str, caller_id: str, timeout_s: float, *, amd: dict[str, Any] | None = None
    ) -> None:
        """Dial ``to``; with ``amd`` (``telephony.amd.AmdSettings``' fields) the answer is reported once the
        answering-machine detector decided (``plane_amd``)."""
        if ref in self.calls:
            emit("error", ref=ref, message="originate: the call exists")
            return
        settings = None
        if amd is not None:
            try:
                settings = plane_amd.settings_of(amd)
            except (TypeError, ValueError) as exc:  # analysed with app_amd's defaults rather than not at all
                emit("error", ref=ref, message=f"originate: amd: {exc}")
                settings = AmdSettings()
        if self.customers() >= self.max_calls:
            emit("full", ref=ref, calls=self.customers(), dialogs=self.dialogs())
            return
        media = MediaCall(self.ng, f"kk-{ref}", customer_tag=f"c-{ref}", cti_tag=f"t-{ref}")
        call = Call(ref=ref, inbound=False, media=media, amd=settings)
        self.calls[ref] = call
        self.by_media[media.media_id] = call
        async with call.lock:
            try:
                sdp = await media.offer_to_customer()
            except NgError as exc:
                emit("error", ref=ref, message=f"originate: {exc}")
                await self._end(call, 503)
                return
            leg = self.invite(to, caller_id, sdp)
            call.outgoing = leg
            self.by_sip[leg.call_id] = (call, None)
            media.customer_tag = leg.dialog.local_tag  # unused by rtpengine until the answer names it
            leg.on_ringing = lambda _leg: emit("remote_ringing", ref=ref)
            leg.on_answer = lambda answered: self.spawn(self._customer_answered(call, answered))
            leg.on_rejected = lambda _leg, code, _reason: self.spawn(self._customer_failed(call, code))
            call.deadline = asyncio.get_running_loop().call_later(timeout_s, lambda: self.spawn(self._no_answer(call)))

    async def _customer_answered(self, call: Call, leg: OutgoingCall) -> None:
        async with call.lock:
            if call.deadline is not None:
                call.deadline.cancel()
            if call.done:
                self.bye(leg)
                return
            await call.media.customer_answered(self.sdp_of(leg))
            call.answered = True
            self.teardown_recipe(call, None, leg)
            if call.amd is not None:
                await plane_amd.start(self, call, call.amd)  # the answer is reported with the verdict
                return
            await self.report_answer(call)

    async def report_answer(self, call: Call, **verdict: Any) -> None:
        """The customer answered (with the detector's ``amd`` verdict when the call was placed with it): the
        driver is told, the prompts queued meanwhile start."""
        emit("answered", ref=call.ref, by="remote", **verdict)
        if call.playlist and not call.playing and not call.done:
            await self._next_prompt(call)

    async def _customer_failed(self, call: Call, code: int) -> None:
        async with call.lock:
            if not call.done:
                await self._end(call, code)

    async def _no_answer(self, call: Call) -> None:
        async with call.lock:
            if call.done or call.answered or call.outgoing is None:
                return
            self.cancel(call.outgoing)
            await self._end(call, 408)

    # -- what the far ends do -------------------------------------------------------------------------------
    def _on_invite(self, incoming: IncomingCall) -> None:
        if self.customers() >= self.max_calls:
            emit("refused", code=503, calls=self.customers(), dialogs=self.dialogs(), sip_call_id=incoming.call_id)
            incoming.reject(503)
            return
        adopt_incoming(incoming, self.transport)
        ref = f"{self.ref_prefix}{next(self.serial)}"
        media = MediaCall(self.ng, f"kk-{ref}", customer_tag=incoming.dialog.remote_tag or f"c-{ref}",
                          cti_tag=incoming.dialog.local_tag or f"t-{ref}")  # fmt: skip
        call = Call(ref=ref, inbound=True, media=media, incoming=incoming)
        self.calls[ref] = call
        self.by_sip[incoming.call_id] = (call, None)
        self.by_media[media.media_id] = call
        emit("incoming", ref=ref, ani=uri_user(incoming.caller), dnis=uri_user(str(incoming.invite.uri)),
             sip_call_id=incoming.call_id)  # fmt: skip
        self.spawn(self._customer_offered(call, incoming.invite.text))

    async def _customer_offered(self, call: Call, sdp: str) -> None:
        try:
            await call.media.customer_offered(sdp)
        except NgError as exc:
            emit("error", ref=call.ref, message=f"offer: {exc}")
            async with call.lock:
                if call.incoming is not None and not call.answer_sent:
                    call.incoming.reject(503)
                await self._end(call, 503)
            return
        call.offered.set()

    def _on_reinvite(self, leg: IncomingCall) -> None:
        # The customer's or an agent's phone renegotiates (hold from the handset, a session refresh): the
        # media stays as it is; answer with what rtpengine already gave that side.
        offer = leg.invite.text if leg.invite.body else ""
        found = self.by_sip.get(leg.call_id)
        if found is not None:
            call, agent = found
            sdp = call.media.toward_customer if agent is None else call.media.toward_cti
        else:  # a consulted colleague's or a supervisor's phone: what it was offered
            ours = self.uac.get_call(leg.call_id)
            if ours is None or ours.sdp_offer is None:
                leg.reject(481)
                return
            sdp = serialize_sdp(ours.sdp_offer)
        leg.accept(parse_sdp(answer_direction(sdp, offer)) if sdp else None)

    def _on_bye(self, leg: IncomingCall, request: SipRequest) -> None:
        consulting = self.consulting.pop(leg.call_id, None)
        if consulting is not None:
            self.spawn(plane_consult.colleague_left(self, consulting))
            return
        listening = self.listening.pop(leg.call_id, None)
        if listening is not None:
            self.spawn(plane_monitor.listener_left(self, *listening))
            return
        found = self.by_sip.pop(leg.call_id, None)
        if found is None:
            return
        call, agent = found
        self.spawn(self._far_end_left(call, agent))

    def _on_cancel(self, request: SipRequest, _addr: tuple[str, int]) -> None:
        found = self.by_sip.pop(request.call_id or "", None)
        if found is not None:
            self.spawn(self._far_end_left(found[0], None, code=487))

    def _on_ack_timeout(self, leg: IncomingCall) -> None:
        found = self.by_sip.pop(leg.call_id, None)
        if found is not None:
            self.spawn(self._far_end_left(found[0], None, code=408))

    async def _far_end_left(self, call: Call, agent: str | None, *, code: int = 200) -> None:
        async with call.lock:
            if call.done:
                return
            if agent is None:  # the customer hung up
                await self._drop_agent(call, caller_gone=True)
                await self._end(call, code)
            elif call.agent == agent and call.agent_leg is not None:  # the agent hung up: the call is over
                call.agent_leg, call.agent = None, None
                emit("agent_hungup", ref=call.ref, agent=agent, code=code)
                await self._hangup_all(call)

    # -- recording ------------------------------------------------------------------------------------------
    async def record(self, call: Call, state: str, path: str | None) -> None:
        """Start, pause, resume or stop the recording. rtpengine writes a pcap of both sides; the WAV (customer
        left, CTI side right) is made from it when the call ends."""
        if state == "started" and call.record_file is None and path:
            call.record_file = path
            await call.media.record(True)
        elif state == "paused" and call.record_file is not None and not call.record_paused:
            call.record_paused = True
            await call.media.record(False)
        elif state == "resumed" and call.record_file is not None and call.record_paused:
            call.record_paused = False
            await call.media.record(True)
        elif state == "stopped" and call.record_file is not None:
            await call.media.record(False)
        else:
            return
        emit("recording", ref=call.ref, state=state, file=path)

    # -- ending ---------------------------------------------------------------------------------------------
    async def _hangup_all(self, call: Call, *, code: int = 200) -> None:
        if call.done:
            return
        await self._drop_agent(call, caller_gone=True)  # the caller does not come back
        if call.incoming is not None:
            if call.answer_sent:
                call.incoming.hangup()
            else:
                call.incoming.reject(480)
        elif call.outgoing is not None:
            if call.outgoing.dialog.state == DialogState.CONFIRMED:
                self.bye(call.outgoing)
            else:
                self.cancel(call.outgoing)
        await self._end(call, code)

    async def _end(self, call: Call, code: int) -> None:
        call.done = True
        if call.deadline is not None:
            call.deadline.cancel()
        if call.detection is not None:  # hung up during the analysis: answered all the same, verdict notsure
            await plane_amd.hung_up(self, call)
        if call.play_timer is not None:
            call.play_timer.cancel()
        for agent, leg in list(call.ringing.items()):
            self.cancel(leg)
            del call.ringing[agent]
        with contextlib.suppress(NgError):  # the listeners are hung up even if rtpengine is gone
            await plane_monitor.stop_all(self, call)
        outcome = "normal" if call.answered else FAILURE_NAMES.get(code, "failed")
        outcome = outcome if self.media_up else "lost"
        emit("ended", ref=call.ref, code=code, answered=call.answered, outcome=outcome)
        if self.media_up:
            await call.media.delete()  # closes the recording too
        if call.record_file is not None:
            self.recordings.convert(call.media.media_id, call.record_file, call.media.customer_address())
        self.calls.pop(call.ref, None)
        self.by_media.pop(call.media.media_id, None)
        self.by_sip.pop(call.sip_call_id, None)
        forget_incoming(call.sip_call_id, self.transport)

    def bye(self, leg: OutgoingCall) -> None:
        if leg.dialog.state == DialogState.CONFIRMED:
            leg.hangup(self.uac)
            self.uac.remove_call(leg.call_id)

    def cancel(self, leg: OutgoingCall) -> None:
        if leg.dialog.state == DialogState.EARLY:
            leg.cancel(self.uac)
        elif leg.dialog.state == DialogState.CONFIRMED:  # answered meanwhile
            self.bye(leg)

    def teardown_recipe(self, call: Call, agent: str | None, leg: IncomingCall | OutgoingCall) -> None:
        """Tell the driver how to hang this dialog up should this process die (a BYE it sends itself)."""
        dialog = leg.dialog
        bye = dialog.create_request("BYE", via_host="127.0.0.1", via_port=self.port)
        dialog.local_cseq += 100  # our own BYE, later, outnumbers the recipe's
        emit("teardown", ref=call.ref, agent=agent, message=bytes(bye).decode(errors="replace"))

    @staticmethod
    def sdp_of(leg: OutgoingCall) -> str:
        """The SDP a far end answered with."""
        return serialize_sdp(leg.sdp_answer) if leg.sdp_answer is not None else ""

    def forget_leg(self, leg: OutgoingCall) -> None:
        self.by_sip.pop(leg.call_id, None)

    # -- DTMF -----------------------------------------------------------------------------------------------
    def dtmf(self, media_id: str, digit: str, source_tag: str) -> None:
        call = self.by_media.get(media_id)
        if call is not None and not call.done and source_tag == call.media.customer_tag:
            emit("dtmf", ref=call.ref, digit=digit)


class _DtmfLog(asyncio.DatagramProtocol):
    """rtpengine's DTMF log (``--dtmf-log-dest``): one JSON datagram per key."""

    def __init__(self, plane: Plane) -> None:
        self.plane = plane

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            event = json.loads(data)
        except ValueError:
            return
        digit = str(event.get("event", ""))
        digit = {"10": "*", "11": "#"}.get(digit, digit)
        self.plane.dtmf(str(event.get("callid", "")), digit, str(event.get("source_tag", "")))


def _report_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        log.error("plane: %r", exc, exc_info=exc)
        emit("error", message=f"{type(exc).__name__}: {exc}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="SIP port on 127.0.0.1")
    parser.add_argument("--proxy", required=True, help="Kamailio's host:port (outgoing calls go through it)")
    parser.add_argument("--ng", required=True, help="rtpengine's ng control address host:port")
    parser.add_argument("--dtmf-port", type=int, default=None, help="UDP port rtpengine's DTMF log is sent to")
    parser.add_argument("--pcap-dir", required=True, help="rtpengine's --recording-dir (its pcaps/ within)")
    parser.add_argument("--ref-prefix", default="sip-", help="call references of incoming calls: <prefix><n>")
    parser.add_argument("--max-calls", type=int, default=MAX_CALLS)
    parser.add_argument("--log-level", type=int, default=0)
    args = parser.parse_args(argv)
    _Out.stream = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    logging.basicConfig(level=logging.WARNING if args.log_level < 4 else logging.DEBUG, stream=sys.stderr)
    host, _, ng_port = args.ng.partition(":")
    plane = Plane(args.port, args.proxy, (host, int(ng_port)), dtmf_port=args.dtmf_port,
                  recordings=RecordingJobs(Path(args.pcap_dir)), ref_prefix=args.ref_prefix,
                  max_calls=args.max_calls)  # fmt: skip
    profile = os.environ.get("KAKEHASHI_PLANE_PROFILE")  # a cProfile dump of the plane's loop (diagnostics)
    if profile:
        import cProfile

        cProfile.runctx("asyncio.run(plane.run())", globals(), {"asyncio": asyncio, "plane": plane}, profile)
    else:
        asyncio.run(plane.run())
    with contextlib.suppress(OSError, ValueError):
        _Out.stream.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
