"""The real telephony driver: SIP calls through Kamailio and rtpengine, answered by the CTI's media worker.

The worker (``sip.media``, a PJSIP back-to-back user agent in its own process) does what a phone system
does; this class turns the boundary's commands into the worker's JSON commands and the worker's events into
the boundary's events (``telephony.port``) — the same events the simulator sends, so routing, IVR, screen
pop and CDRs work unchanged (ADR 0013).

A worker holds at most four SIP dialogs (the ``pjsua2-python`` wheel's PJSUA_MAX_CALLS), so the driver runs a
**pool** of ``SipOptions.workers`` workers, worker ``i`` on ``worker_port + 2*i``; Kamailio's ``dispatcher``
sends inbound calls to them round robin and passes a call refused by a full worker (503) to the next one.
Each call is served by one worker from start to end: the driver remembers which (its reference carries the
worker's prefix) and sends every command for the call there; ``originate`` picks the worker with the most
room. One thread delivers the events of all workers, in the order they arrive, so handlers see one stream as
with a single worker. A worker that dies ends its calls as ``failed`` and is started again.

An attended transfer's consultation leg and a supervisor's listening leg (:class:`Monitoring`) are dialogs of the
worker holding the call: they fit beside the call's customer and agent legs while the worker's other call, if
any, has no agent; ``calls_per_worker=1`` keeps room for both on every call (docs/telephony.md, "Capacity").
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import queue
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kakehashi.kit.db import utcnow
from kakehashi.kit.phone import try_normalize_phone
from kakehashi.kit.timers import RealTimeClock
from kakehashi.telephony.drivers.sip import bencode
from kakehashi.telephony.drivers.sip.prompts import PromptCache, hold_music, wav_seconds
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

log = logging.getLogger(__name__)
#: Media workers by default (``kit.config.Settings.sip_workers`` and ``sip.lab.DEFAULT_CTI_WORKERS`` match it).
DEFAULT_WORKERS = 4
#: Customer calls per worker: two calls and their agent legs fill the four dialogs a worker has.
CALLS_PER_WORKER = 2
DIALOGS_PER_WORKER = 4
#: Ports between two workers (worker ``i`` listens on ``worker_port + PORT_STEP * i``).
PORT_STEP = 2
OUTCOMES = {"busy": EndCause.BUSY, "no_answer": EndCause.NO_ANSWER, "invalid": EndCause.INVALID_NUMBER}
#: Why a consultation leg ended, as the worker names it (anything else: failed).
CONSULT_CAUSES = {"normal": EndCause.NORMAL, **OUTCOMES}


class MediaWorkerError(RuntimeError):
    pass


@dataclass(frozen=True)
class SipOptions:
    """Where the workers listen and how they reach Kamailio; where prompts and recordings live.

    ``worker_port`` is the first worker's SIP port (127.0.0.1); worker ``i`` listens on ``worker_port + 2*i``
    — the addresses Kamailio's dispatcher set must list."""

    worker_port: int
    proxy: str  # Kamailio host:port
    data_dir: Path
    log_level: int = 0
    start_timeout_s: float = 20.0  # for all workers (they start in parallel)
    no_answer_s: float = 30.0  # an outbound call nobody answers within this is a no-answer
    workers: int = DEFAULT_WORKERS
    calls_per_worker: int = CALLS_PER_WORKER
    #: ``pjsip``: the media workers carry the audio (ADR 0013); ``rtpengine``: one signalling worker
    #: (``sip.plane``) and rtpengine carries the audio (ADR 0024) — then ``ng`` (rtpengine's control address,
    #: host:port), ``pcap_dir`` (its --recording-dir) and ``dtmf_port`` (its --dtmf-log-dest port) are needed.
    engine: str = "pjsip"
    ng: str | None = None
    pcap_dir: Path | None = None
    dtmf_port: int | None = None

    @property
    def worker_ports(self) -> list[int]:
        return [self.worker_port + PORT_STEP * i for i in range(self.workers)]


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
    agent: str | None = None  # the agent the caller talks to
    consulting: str | None = None  # the colleague of an attended transfer, until it is completed or ends
    consult_up: bool = False  # they answered
    listeners: set[str] = field(default_factory=set)  # supervisors called to listen (silent monitor)


class _Worker:
    """One media worker process: its port, its stdin, the calls it holds, the load it last reported."""

    def __init__(self, index: int, port: int) -> None:
        self.index, self.port = index, port
        self.generation = 0  # starts so far (a restart is a new generation: new call references)
        self.proc: subprocess.Popen[str] | None = None
        self.reader: threading.Thread | None = None
        self.log: IO[bytes] | None = None
        self.ready = threading.Event()
        self.write_lock = threading.Lock()
        self.refs: set[str] = set()  # calls (driver references) this worker holds
        self.calls = 0  # customer calls and dialogs in use, as the worker last reported
        self.dialogs = 0
        self.started_at = 0.0
        self.backoff_s = 0.0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def send(self, line: str) -> bool:
        proc = self.proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            return False
        try:
            with self.write_lock:
                proc.stdin.write(line)
                proc.stdin.flush()
        except (OSError, ValueError):  # the worker just died (broken pipe) or its pipe is closed
            return False
        return True


class SipDriver:
    """``TelephonyDriver`` over real SIP. ``tenant_of(dnis)`` says whose number was dialled (None: not ours,
    the call is refused with 404)."""

    name = "sip"

    def __init__(self, options: SipOptions, tenant_of: Callable[[str], int | None]) -> None:
        if options.engine == "rtpengine" and (options.workers != 1 or not options.ng or options.pcap_dir is None):
            raise ValueError("the rtpengine engine runs one signalling worker and needs ng and pcap_dir")
        self.options = options
        self.tenant_of = tenant_of
        self.clock = RealTimeClock()
        self.prompts = PromptCache(options.data_dir / "prompts")
        self.recordings = options.data_dir / "recordings"
        self.recordings.mkdir(parents=True, exist_ok=True)
        self.music = hold_music(self.prompts.directory / "hold-music.wav")
        self._handlers: list[EventHandler] = []
        self._calls: dict[str, _Call] = {}
        self._owner: dict[str, _Worker] = {}  # call reference → the worker holding the call
        self._teardowns: dict[str, dict[str, str]] = {}  # call → its confirmed dialogs' BYEs (``_tear_down``)
        self._placing: dict[str, tuple[dict[str, Any], set[int]]] = {}  # originated, not yet taken by a worker:
        # what to dial, and the workers that were full
        self._ids = itertools.count(1)
        self._run = secrets.token_hex(4)  # call references of this driver never repeat a previous run's
        self._closing = False
        self._restart_lock = threading.Lock()
        self._events: queue.SimpleQueue[tuple[_Worker | None, int, dict[str, Any] | None]] = queue.SimpleQueue()
        self._log_path = options.data_dir / "sip-media-<worker>.log"
        self._workers = [_Worker(i, port) for i, port in enumerate(options.worker_ports)]
        self._dispatcher = threading.Thread(target=self._dispatch, name="sip-media-events", daemon=True)
        self._dispatcher.start()
        try:
            for worker in self._workers:  # all at once: each takes ~0.2 s of CPU to load PJSIP
                self._spawn(worker)
            deadline = time.monotonic() + options.start_timeout_s
            for worker in self._workers:
                worker.ready.wait(max(0.0, deadline - time.monotonic()))
            late = [f"{w.index} (port {w.port})" for w in self._workers if not w.ready.is_set()]
        except BaseException:
            self.close()
            raise
        if late:
            self.close()
            raise MediaWorkerError(f"SIP media worker(s) {', '.join(late)} did not start; see {self._log_path}")

    # -- the workers ----------------------------------------------------------------------------------------
    def _spawn(self, worker: _Worker) -> None:
        worker.generation += 1
        worker.ready.clear()
        worker.calls = worker.dialogs = 0
        worker.started_at = time.monotonic()
        prefix = f"sip-{self._run}-{worker.index}.{worker.generation}-"
        if worker.log is None:  # PJSIP's log (--log-level) and any traceback; one file per worker, kept open
            worker.log = open(self.options.data_dir / f"sip-media-{worker.index}.log", "ab")  # noqa: SIM115
        worker.proc = proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            self._worker_argv(worker, prefix),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=worker.log, text=True, encoding="utf-8",
            start_new_session=True,
        )  # fmt: skip
        worker.reader = threading.Thread(target=self._read, args=(worker, proc, worker.generation),
                                         name=f"sip-media-{worker.index}", daemon=True)  # fmt: skip
        worker.reader.start()

    def _worker_argv(self, worker: _Worker, prefix: str) -> list[str]:
        o = self.options
        common = ["--port", str(worker.port), "--proxy", o.proxy, "--log-level", str(o.log_level),
                  "--ref-prefix", prefix]  # fmt: skip
        if o.engine == "rtpengine":
            plane = [sys.executable, "-m", "kakehashi.telephony.drivers.sip.plane", *common, "--ng", str(o.ng),
                     "--pcap-dir", str(o.pcap_dir)]  # fmt: skip
            return plane + (["--dtmf-port", str(o.dtmf_port)] if o.dtmf_port is not None else [])
        media = [sys.executable, "-m", "kakehashi.telephony.drivers.sip.media", *common]
        return [*media, "--max-calls", str(o.calls_per_worker)]

    def _read(self, worker: _Worker, proc: subprocess.Popen[str], generation: int) -> None:
        """One worker's events (JSON lines) into the driver's single event queue; its end, when it exits."""
        stdout: IO[str] | None = proc.stdout
        assert stdout is not None
        for line in stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                log.warning("SIP media worker %d: not an event: %s", worker.index, line.strip())
                continue
            if ev.get("ev") == "ready":
                worker.ready.set()
            else:
                self._events.put((worker, generation, ev))
        proc.wait()
        self._events.put((worker, generation, None))

    def _dispatch(self) -> None:
        while True:
            worker, generation, ev = self._events.get()
            if worker is None and ev is None:
                return  # close()
            try:
                if worker is not None and generation != worker.generation:
                    continue  # a previous process of this worker
                if ev is None:
                    assert worker is not None
                    self._worker_died(worker)
                else:
                    self._on_worker_event(worker, ev)
            except Exception:  # one bad event must not stop every call's events
                log.exception("SIP media event failed: %s", ev)

    def _worker_died(self, worker: _Worker) -> None:
        """End the worker's calls as failed and start it again (unless the driver is closing)."""
        refs = list(worker.refs)
        worker.refs.clear()
        worker.ready.clear()
        for ref in refs:
            self._owner.pop(ref, None)
            self._tear_down(ref)
            call = self._calls.get(ref)
            if call is not None:
                self._end(call, EndCause.FAILED)
        if self._closing:
            return
        code = worker.proc.returncode if worker.proc is not None else None
        lived = time.monotonic() - worker.started_at
        worker.backoff_s = 0.5 if lived > 60 or not worker.backoff_s else min(30.0, worker.backoff_s * 2)
        log.error("SIP media worker %d (pid %s, port %d) exited with status %s after %.0f s: %d call(s) ended "
                  "as failed; restarting it in %.1f s (log: %s)", worker.index, worker.pid, worker.port, code, lived,
                  len(refs), worker.backoff_s, self.options.data_dir / f"sip-media-{worker.index}.log")  # fmt: skip
        threading.Thread(target=self._restart, args=(worker,), name=f"sip-media-restart-{worker.index}",
                         daemon=True).start()  # fmt: skip

    def _tear_down(self, ref: str) -> None:
        """A worker died holding ``ref``: hang up its customer and agent themselves (the worker sent a BYE for
        each dialog when it was confirmed) and free its media in rtpengine, so nobody is left on a silent line."""
        recipes = self._teardowns.pop(ref, {})
        host, _, port = self.options.proxy.partition(":")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for message in recipes.values():
                with contextlib.suppress(OSError):
                    sock.sendto(message.encode(), (host, int(port or 5060)))
            if self.options.engine == "rtpengine" and self.options.ng:
                ng_host, _, ng_port = self.options.ng.partition(":")
                body = bencode.encode({"command": "delete", "call-id": f"kk-{ref}"})
                with contextlib.suppress(OSError):
                    sock.sendto(secrets.token_hex(6).encode() + b" " + body, (ng_host, int(ng_port)))
        if recipes:
            log.warning("SIP: %s's %d dialog(s) hung up by the driver (its worker died)", ref, len(recipes))

    def _restart(self, worker: _Worker) -> None:
        time.sleep(worker.backoff_s)
        with self._restart_lock:
            if self._closing:
                return
            self._spawn(worker)
        if worker.ready.wait(self.options.start_timeout_s):
            log.warning("SIP media worker %d restarted (pid %s)", worker.index, worker.pid)
        elif worker.alive:
            log.error("SIP media worker %d (pid %s) did not start again; killing it", worker.index, worker.pid)
            self._kill(worker)  # its reader then reports the exit, which restarts it again (with back-off)

    def _kill(self, worker: _Worker) -> None:
        if worker.proc is not None and worker.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.proc.pid, 9)
            worker.proc.wait(5)

    def worker_pids(self) -> list[int]:
        """Process ids of the media workers running now (benchmarks, diagnostics)."""
        return [w.proc.pid for w in self._workers if w.proc is not None and w.alive]

    def _send(self, cmd: str, *, ref: str, **fields: Any) -> None:
        """A command for one call, to the worker holding it. A call no worker holds (it has ended, or its worker
        died and its end is on its way) is left alone, as a worker does with a command for a call it no longer
        has."""
        worker = self._owner.get(ref)
        if worker is None:
            log.debug("SIP media: %s for %s, which no worker holds", cmd, ref)
            return
        if not worker.send(json.dumps({"cmd": cmd, "ref": ref, **fields}, ensure_ascii=False) + "\n"):
            log.warning("SIP media worker %d is not running: %s for %s dropped", worker.index, cmd, ref)

    def close(self) -> None:
        """Stop the workers (their calls end as failed) and the timers."""
        with self._restart_lock:
            self._closing = True
        running = [w for w in self._workers if w.alive]
        for worker in running:
            worker.send(json.dumps({"cmd": "quit"}) + "\n")
        deadline = time.monotonic() + 10
        for worker in running:
            assert worker.proc is not None
            try:
                worker.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._kill(worker)
        for worker in self._workers:
            if worker.proc is not None and worker.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    worker.proc.stdin.close()
            if worker.reader is not None:
                worker.reader.join(5)
        self._events.put((None, 0, None))
        if self._dispatcher is not threading.current_thread():
            self._dispatcher.join(5)
        for worker in self._workers:
            if worker.log is not None:
                worker.log.close()
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

    def originate(self, to: str, *, caller_id: str, tenant_id: int, amd: Mapping[str, Any] | None = None) -> str:
        """Dial ``to``. With ``amd`` the media plane (engine ``rtpengine``) reports the answer once its
        answering-machine detector decided (``sip.plane_amd``): :class:`Answered` with ``amd`` human, machine or
        notsure. The PJSIP media workers have no detector: they report the answer at once, ``amd`` None."""
        ref = f"sipo-{self._run}-{next(self._ids)}"
        self._calls[ref] = _Call(ref, Direction.OUTBOUND, caller_id, tenant_id)
        self._emit(Offered(call_ref=ref, at=utcnow(), direction=Direction.OUTBOUND, ani=caller_id, dnis=to,
                           tenant_id=tenant_id))  # fmt: skip
        dial: dict[str, Any] = {"to": _dialable(to), "caller_id": _dialable(caller_id),
                                "timeout_s": self.options.no_answer_s}  # fmt: skip
        if amd is not None and self.options.engine == "rtpengine":
            dial["amd"] = dict(amd)
        self._placing[ref] = (dial, set())
        self._place(ref)
        return ref

    def _place(self, ref: str) -> None:
        """Send an originated call to the running worker with the most room (fewest calls, then dialogs) that
        has not refused it yet; with none left, the call fails (through the event thread, as a worker's end)."""
        placing = self._placing.get(ref)
        if placing is None:
            return
        dial, tried = placing
        candidates = [w for w in self._workers if w.index not in tried and w.ready.is_set() and w.alive]
        roomy = [w for w in candidates if len(w.refs) < self.options.calls_per_worker
                 and w.dialogs + 2 <= DIALOGS_PER_WORKER]  # fmt: skip
        for worker in sorted(roomy or candidates, key=lambda w: (len(w.refs), w.dialogs, w.index)):
            tried.add(worker.index)
            self._owner[ref] = worker
            worker.refs.add(ref)
            line = json.dumps({"cmd": "originate", "ref": ref, **dial}, ensure_ascii=False) + "\n"
            if worker.send(line):
                return
            worker.refs.discard(ref)
            self._owner.pop(ref, None)
        log.warning("SIP media: no worker has room for an outbound call (%s): it fails", ref)
        self._placing.pop(ref, None)
        self._events.put((None, 0, {"ev": "ended", "ref": ref, "code": 503, "answered": False, "outcome": "failed"}))

    def transfer(self, call_ref: str, target: str) -> None:
        """Blind. To an agent: their phone rings and the current agent leaves the call (with a colleague they
        were consulting). Elsewhere: the call leaves the center (a blind transfer to an outside number is not
        offered yet: the call ends as transferred)."""
        call = self._calls[call_ref]
        self._emit(Transferred(call_ref=call_ref, at=utcnow(), target=target, attended=False))
        self._send("drop_agent", ref=call_ref)
        if _is_number(target):
            call.transferring_to = target
            self._send("hangup", ref=call_ref)
            return
        self._send("play", ref=call_ref, file=str(self.music), loop=True)
        self.route_to_agent(call_ref, target)

    def consult(self, call_ref: str, target: str) -> None:
        """The caller holds (music) and the agent's phone is joined to ``target``'s, rung on a new leg that shows
        the agent's name; the worker reports the answer (:class:`Consult` connected) or the end. A colleague
        only: a phone number ends the consultation at once (invalid number)."""
        call = self._calls.get(call_ref)
        if call is None or not call.live or call.consulting is not None:
            return
        call.consulting, call.consult_up = target, False
        at = utcnow()
        self._emit(HoldChanged(call_ref=call_ref, at=at, on_hold=True))
        self._emit(Consult(call_ref=call_ref, at=at, target=target, state=ConsultState.RINGING))
        if _is_number(target):
            self._consult_ended(call, target, EndCause.INVALID_NUMBER, caller_gone=False)
            return
        self._send("consult", ref=call_ref, agent=target, caller_id=call.agent or "", music=str(self.music))

    def complete_transfer(self, call_ref: str) -> None:
        """The caller joins the colleague, who becomes the call's agent; the events follow the worker's
        confirmation (the colleague may hang up meanwhile: then the consultation ends instead)."""
        call = self._calls.get(call_ref)
        if call is not None and call.live and call.consult_up:
            self._send("complete_consult", ref=call_ref)

    def cancel_transfer(self, call_ref: str) -> None:
        call = self._calls.get(call_ref)
        if call is not None and call.live and call.consulting is not None:
            self._send("cancel_consult", ref=call_ref)

    def hold(self, call_ref: str, *, on: bool) -> None:
        """Hold or resume; left alone during a consultation (the caller holds until it is completed or ends)."""
        call = self._calls.get(call_ref)
        if call is not None and call.consulting is not None:
            log.info("SIP: hold(%s) on %s during a consultation: ignored", on, call_ref)
            return
        self._send("hold", ref=call_ref, on=on, music=str(self.music))
        self._emit(HoldChanged(call_ref=call_ref, at=utcnow(), on_hold=on))

    # -- Monitoring -----------------------------------------------------------------------------------------
    def monitor(self, call_ref: str, listener: str) -> None:
        """Ring ``listener``'s phone (a supervisor) to hear the caller and the agents, unheard: on when they
        answer, off when they hang up, are stopped, cannot be reached, or the call ends."""
        call = self._calls.get(call_ref)
        if call is None or not call.live or listener in call.listeners:
            return
        call.listeners.add(listener)
        self._send("monitor", ref=call_ref, listener=listener, caller_id=call.agent or _dialable(call.ani))

    def stop_monitor(self, call_ref: str, listener: str) -> None:
        call = self._calls.get(call_ref)
        if call is not None and listener in call.listeners:
            self._send("stop_monitor", ref=call_ref, listener=listener)

    def hangup(self, call_ref: str) -> None:
        """Hang up — after the prompts still queued (a closing message, a callback's confirmation) are heard."""
        pending = self.audio_queued_s(call_ref)
        if pending > 0:
            self.clock.call_later(pending, lambda: self._send("hangup", ref=call_ref))
            return
        self._send("hangup", ref=call_ref)

    def record(self, call_ref: str, state: RecordingState) -> None:
        self._send("record", ref=call_ref, state=state.value, file=str(self.recording_path(call_ref)))

    def live_calls(self) -> set[str]:
        # A copy first: the dispatcher thread adds and removes calls while others ask (a bench at 300 calls
        # crashed with "dictionary changed size during iteration").
        return {ref for ref, call in list(self._calls.items()) if call.live}

    def audio_queued_s(self, call_ref: str) -> float:
        call = self._calls.get(call_ref)
        return 0.0 if call is None else max(0.0, call.audio_until - time.monotonic())

    def recording_path(self, call_ref: str) -> Path:
        return self.recordings / f"{call_ref}.wav"

    # -- worker events → boundary events --------------------------------------------------------------------
    def _on_worker_event(self, worker: _Worker | None, ev: dict[str, Any]) -> None:
        """One event of ``worker`` (None: the driver's own, e.g. an outbound call no worker could take)."""
        kind, ref = ev["ev"], ev.get("ref", "")
        if kind == "load":
            if worker is not None:
                worker.calls, worker.dialogs = int(ev["calls"]), int(ev["dialogs"])
                log.debug("SIP media worker %d: %d call(s), %d dialog(s)", worker.index, worker.calls, worker.dialogs)
            return
        if kind == "refused":
            log.info("SIP media worker %s is full (%s calls, %s dialogs): an inbound call goes to another one",
                     worker.index if worker else "?", ev.get("calls"), ev.get("dialogs"))  # fmt: skip
            return
        if kind == "teardown":
            self._teardowns.setdefault(ref, {})[ev.get("agent") or ""] = ev["message"]
            return
        if kind == "incoming":
            if worker is not None:
                self._owner[ref] = worker
                worker.refs.add(ref)
            self._incoming(ref, ev["ani"], ev["dnis"])
            return
        if kind == "full":  # an originate the worker had no room for: the next worker
            if worker is not None and self._owner.get(ref) is worker:
                self._owner.pop(ref, None)
                worker.refs.discard(ref)
                self._place(ref)
            return
        self._placing.pop(ref, None)  # a worker has the call
        if kind == "ended":
            self._teardowns.pop(ref, None)
            owner = self._owner.pop(ref, None)
            if owner is not None:
                owner.refs.discard(ref)
        call = self._calls.get(ref)
        if call is None:
            if kind == "error":
                log.warning("SIP media worker: %s", ev.get("message"))
            return
        at = utcnow()
        match kind:
            case "answered":
                if ev.get("amd") is not None:
                    log.info("SIP: %s answered by a %s (%s after %s ms of audio)", ref, ev["amd"], ev.get("amd_cause"),
                             ev.get("amd_ms"))  # fmt: skip
                self._emit(Answered(call_ref=ref, at=at, by=ev["by"], amd=ev.get("amd")))
            case "dtmf":
                if call.sensitive_left > 0:
                    call.sensitive_left -= 1
                    self._emit(SensitiveDtmfReceived(call_ref=ref, at=at, digits=ev["digit"]))
                else:
                    self._emit(DtmfReceived(call_ref=ref, at=at, digits=ev["digit"]))
            case "agent_answered" if ev["agent"] in call.ringing:
                call.ringing.clear()
                call.agent = ev["agent"]
                call.audio_until = 0.0  # the bridge stopped any prompt
                self._emit(Bridged(call_ref=ref, at=at, agent=ev["agent"]))
            case "consult_answered" if ev["agent"] == call.consulting and not call.consult_up:
                call.consult_up = True
                self._emit(Consult(call_ref=ref, at=at, target=ev["agent"], state=ConsultState.CONNECTED))
            case "consult_ended" if ev["agent"] == call.consulting:
                if ev.get("code") == 503:
                    log.warning("SIP media: could not consult %s on %s: %s", ev["agent"], ref, ev.get("reason"))
                cause = CONSULT_CAUSES.get(ev["cause"], EndCause.FAILED)
                self._consult_ended(call, ev["agent"], cause, caller_gone=bool(ev.get("caller_gone")))
            case "consult_completed" if ev["agent"] == call.consulting:
                call.consulting, call.consult_up, call.agent = None, False, ev["agent"]
                call.ringing.clear()
                call.audio_until = 0.0
                self._emit(Transferred(call_ref=ref, at=at, target=ev["agent"], attended=True))
                self._emit(Bridged(call_ref=ref, at=at, agent=ev["agent"]))
                self._emit(HoldChanged(call_ref=ref, at=at, on_hold=False))
            case "monitor_answered" if ev["listener"] in call.listeners:
                self._emit(MonitorChanged(call_ref=ref, at=at, listener=ev["listener"], on=True))
            case "monitor_ended" if ev["listener"] in call.listeners:
                if ev.get("code") == 503:
                    log.warning("SIP media: could not monitor %s for %s: %s", ref, ev["listener"], ev.get("reason"))
                call.listeners.discard(ev["listener"])
                self._emit(MonitorChanged(call_ref=ref, at=at, listener=ev["listener"], on=False))
            case "agent_failed":
                call.ringing.discard(ev["agent"])  # the ring time-out of routing moves the caller on
                if ev.get("code") == 503:
                    log.warning("SIP media: could not ring %s for %s: %s", ev["agent"], ref, ev.get("reason"))
            case "recording":
                state = RecordingState(ev["state"])
                path = self.recording_path(ref)
                recording_ref = f"sip/{path.name}" if state is RecordingState.STARTED else None
                self._emit(RecordingChanged(call_ref=ref, at=at, state=state, recording_ref=recording_ref))
            case "ended":
                if call.transferring_to is not None:
                    cause = EndCause.TRANSFERRED
                elif ev.get("outcome") == "lost":  # the media relay is gone (rtpengine's media plane)
                    cause = EndCause.FAILED
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

    def _consult_ended(self, call: _Call, target: str, cause: EndCause, *, caller_gone: bool) -> None:
        call.consulting, call.consult_up = None, False
        at = utcnow()
        self._emit(Consult(call_ref=call.ref, at=at, target=target, state=ConsultState.ENDED, cause=cause))
        if call.live and not caller_gone:
            self._emit(HoldChanged(call_ref=call.ref, at=at, on_hold=False))

    def _end(self, call: _Call, cause: EndCause) -> None:
        """The call is over: a consultation and listeners the worker did not report ended (it died) end first."""
        if call.live:
            if call.consulting is not None:
                self._consult_ended(call, call.consulting, EndCause.FAILED, caller_gone=True)
            for listener in sorted(call.listeners):
                self._emit(MonitorChanged(call_ref=call.ref, at=utcnow(), listener=listener, on=False))
            call.listeners.clear()
            call.live = False
            owner = self._owner.pop(call.ref, None)
            if owner is not None:
                owner.refs.discard(call.ref)
            self._placing.pop(call.ref, None)
            self._emit(Ended(call_ref=call.ref, at=utcnow(), cause=cause))
            self._calls.pop(call.ref, None)

    def _music(self, music: str | None) -> Path:
        return self.prompts.wav_for(music) if music and music.endswith(".wav") else self.music

    def _emit(self, event: DriverEvent) -> None:
        for handler in list(self._handlers):
            handler(event)


def _is_number(target: str) -> bool:
    """A phone number (an outside party), not an agent's name."""
    return target.isdigit() or target.startswith("+")


def _dialable(number: str) -> str:
    """Any written form → the national digits Japanese carriers expect on a trunk (``+81312345678``,
    ``03-1234-5678`` → ``0312345678``); what is not a phone number (an agent's name) is left as it is."""
    e164 = try_normalize_phone(number)
    if e164 is None:
        return number
    return "0" + e164[3:] if e164.startswith("+81") else e164


def _conforms(driver: SipDriver) -> TelephonyDriver:
    """mypy checks here that the SIP driver implements the whole boundary."""
    return driver


def _monitors(driver: SipDriver) -> Monitoring:
    return driver
