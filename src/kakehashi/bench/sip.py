"""``kakehashi bench sip``: real SIP calls through Kamailio, rtpengine and the media workers, recorded.

A private stack (``sip.lab.SipStack``) on 127.0.0.1; **sipp** plays the customers (each call sends a μ-law
tone for ``call_s`` seconds, then hangs up) and the agents (a UAS echoing the audio back, put in Kamailio's
location table as ``bench-agent``). The CTI side is the real ``SipDriver`` with its pool of media workers
(``ceil(concurrent / 2)`` plus spares; Kamailio's dispatcher spreads the calls): it answers each call, starts
the recording and rings the agent, like the IVR's queue exit does. ``concurrent`` calls are kept up for
``seconds`` (sipp starts ``concurrent / call_s`` calls a second, at most ``concurrent`` at once).

Reported: ``setup_p50_ms``/``setup_p99_ms`` (the call offered to the CTI → caller and agent joined),
``answer_p50_ms``/``answer_p99_ms`` (sipp: INVITE sent → 200 OK, Kamailio's routing included), ``completed``
(joined, recorded and ended normally, and a success for sipp), ``failed`` (every other call sipp made:
``calls = completed + failed``), ``recordings_ok`` (WAVs holding most of their call, not silent; on a
two-channel WAV its left, the customer's channel), ``recordings_two_sided`` (rtpengine's media plane: two-channel
WAVs with neither side silent, the agent echoing the customer's tone; ``None`` for PJSIP's mono WAVs),
``recordings_lag_s`` (rtpengine's media plane: the wait, after the CTI's last call ended, for its last WAV),
``peak_concurrent``/``mean_concurrent`` (live calls in the driver during the steady part),
``cpu_percent`` (Kamailio + rtpengine + media workers + the driver's process, % of one core, measured over
the steady part; ``cpu_by`` splits it, sipp shown apart), memory (the same processes' summed PSS, proportional
set size: ``rss_mb_before`` the first call, ``rss_mb_total`` during the steady part, the mean of samples 5 s
apart; ``rss_mb_per_call`` = what their anonymous and shared memory grew by / ``mean_concurrent``, file pages
left out, see ``pss_mb``) and the machine's load at the time.

Then, unless ``bare=False`` (``--no-bare``), the same calls over the bare path, sipp ↔ Kamailio ↔ rtpengine ↔
sipp without the CTI, on a fresh stack once this one is gone (``sip_bare``): ``bare`` holds its figures
(``calls``, ``completed``, ``failed``, ``cpu_percent`` of Kamailio + rtpengine, ``cpu_by``, memory),
``bare_cpu_percent``, ``bare_rss_mb_per_call`` and ``cpu_ratio_vs_bare`` (``cpu_percent`` / ``bare_cpu_percent``)
sit next to the CTI's figures.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kakehashi.telephony.drivers.sip.driver import CALLS_PER_WORKER, SipDriver
from kakehashi.telephony.drivers.sip.lab import LabError, SipStack, read_wav, release_ports, reserve_ports
from kakehashi.telephony.port import (
    Bridged,
    DriverEvent,
    DtmfReceived,
    EndCause,
    Ended,
    Offered,
    RecordingChanged,
    RecordingState,
)

AGENT = "bench-agent"
CENTER_NUMBER = "0120999999"
_TICKS = os.sysconf("SC_CLK_TCK")

UAC_SCENARIO = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="kakehashi customer">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:0312345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:0312345678@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=customer 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [rtpstream_audio_port] RTP/AVP 0{dtmf_pt}
a=rtpmap:0 PCMU/8000{dtmf_map}
a=sendrecv
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>{ack_pause}
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
[last_Call-ID:]
[routes]
CSeq: 1 ACK
Contact: <sip:0312345678@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>
  <nop><action><exec rtp_stream="{tone},-1,0"/></action></nop>{key}
  <pause milliseconds="{hold_ms}"/>
  <nop><action><exec rtp_stream="pause"/></action></nop>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
[last_Call-ID:]
[routes]
CSeq: 2 BYE
Contact: <sip:0312345678@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""

# The agent: sipp's built-in UAS leaves Record-Route out of its answers, so the worker's ACK and BYE would go
# straight to sipp, whose replies go to Kamailio (the INVITE's source), which drops them: the worker would
# resend its BYE for 32 s, holding one of its four call slots. This one keeps Kamailio in the dialog. A busy
# machine answers late: Kamailio then resends the INVITE, which sipp answers itself (a repeated request gets again
# what sipp sent after it, the 180; the 200 is resent every 500 ms until the ACK comes), and the CTI ACKs each 200
# it gets (RFC 3261 13.2.2.4), so further ACKs are taken. sipp ends a call on any unexpected message: jumping back
# to send the 200 again on a repeated INVITE (as before) ended the agent's call when the ACK came before that
# send (175 of 4,200 calls on the bare path at 700 concurrent, then the customer's BYE went unanswered), and a
# second ACK ended it while it waited for the BYE (159 of 3,000 agent calls at 500 concurrent, one run).
UAS_SCENARIO = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="kakehashi agent">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:bench-agent@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:bench-agent@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=agent 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=sendrecv
]]></send>
  <recv request="INVITE" optional="true"/>
  <recv request="ACK" crlf="true"/>
  <label id="1"/>
  <recv request="ACK" optional="true" next="1"/>
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <timewait milliseconds="4000"/>
</scenario>
"""


@dataclass
class _Tally:
    """What the CTI saw of each call (the bench's stand-in for the call controller)."""

    offered: dict[str, float] = field(default_factory=dict)
    setup_ms: list[float] = field(default_factory=list)
    bridged: set[str] = field(default_factory=set)
    recording: set[str] = field(default_factory=set)
    keyed: set[str] = field(default_factory=set)  # calls whose caller's key the CTI heard (``dtmf``)
    completed: int = 0
    failed: int = 0
    causes: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def workers_for(concurrent: int) -> int:
    """Media workers for ``concurrent`` calls: two calls each, plus spares (a worker holds a call a little
    longer than sipp does, and round robin meets full workers before free ones)."""
    return math.ceil(concurrent / CALLS_PER_WORKER) + 1 + concurrent // 20


def run(
    concurrent: int = 10,
    seconds: float = 20.0,
    call_s: float = 10.0,
    workers: int | None = None,
    ack_delay_ms: int = 0,
    bare: bool = True,
    engine: str = "rtpengine",
    prompt_s: float = 0.0,
    dtmf: bool = False,
) -> dict[str, Any]:
    """Keep ``concurrent`` recorded calls up for ``seconds`` (each call lasts ``call_s``); JSON-ready figures.
    ``ack_delay_ms``: each customer acknowledges our answer this late (a slow far end, a busy machine), so the
    agent's phone may answer first; under PJSIP's first 200 OK retransmission (500 ms). ``bare``: then the
    same calls over the bare path, without the CTI (``sip_bare``), for ``cpu_ratio_vs_bare``. ``engine``: the
    CTI's PJSIP media workers (``pjsip``) or the signalling plane on rtpengine's media plane (``rtpengine``).
    ``prompt_s``: each caller first hears a greeting that long (the CTI's prompts at scale), then the agent rings.
    ``dtmf``: each caller keys "1" after the greeting (RFC 4733), and only that key rings the agent."""
    for tool in ("sipp", "kamailio", "rtpengine", "kamcmd", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (scripts/services installs the SIP tools)")
    if concurrent < 1 or seconds <= 0 or call_s <= 0:
        raise ValueError("concurrent, seconds and call_s must be positive")
    work = Path(tempfile.mkdtemp(prefix="kk-bench-sip-"))
    try:
        scenario = _scenarios(work, call_s, ack_delay_ms, prompt_s + 0.5 if dtmf else None)
        if engine == "rtpengine":
            workers = 1  # one signalling process takes every call
        report = _run(work, scenario, concurrent, seconds, call_s, workers or workers_for(concurrent), engine,
                      prompt_s, dtmf)  # fmt: skip
        report["prompt_s"], report["dtmf"] = prompt_s, dtmf
        report["ack_delay_ms"] = ack_delay_ms
        report["engine"] = engine
        if bare:
            from kakehashi.bench import sip_bare  # here: it builds on this module

            report.update(sip_bare.compare(report, sip_bare.run(work / "bare", scenario, concurrent, seconds, call_s)))
        return report
    except BaseException:
        keep = os.environ.get("KAKEHASHI_BENCH_KEEP")  # a failed run's logs, for a look
        if keep:
            shutil.copytree(work, Path(keep), dirs_exist_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


#: sipp's own recording of an RFC 4733 key "1" (Debian's sip-tester package).
DTMF_PCAP = Path("/usr/share/sip-tester/dtmf_2833_1.pcap")


def _scenarios(work: Path, call_s: float, ack_delay_ms: int, key_after_s: float | None = None) -> Path:
    """The customers' scenario (returned), its tone and the agent's scenario (``agent.xml`` next to it): both
    phases use the same ones, so their media load matches. ``key_after_s``: each customer keys "1" (RFC 4733,
    telephone-event offered) that long after the answer, as a caller choosing in an IVR menu."""
    tone = work / "tone-ulaw.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "u-law", str(tone), "synth", str(call_s + 5),  # noqa: S603,S607
                    "sine", "440", "vol", "0.5"], check=True)  # fmt: skip
    scenario = work / "customer.xml"
    ack_pause = f'\n  <pause milliseconds="{ack_delay_ms}"/>' if ack_delay_ms else ""
    hold_ms, key, dtmf_pt, dtmf_map = int(call_s * 1000), "", "", ""
    if key_after_s is not None:
        key_ms = int(key_after_s * 1000)
        hold_ms = max(0, hold_ms - key_ms)
        key = (f'\n  <pause milliseconds="{key_ms}"/>\n'
               f'  <nop><action><exec play_pcap_audio="{DTMF_PCAP}"/></action></nop>')  # fmt: skip
        dtmf_pt, dtmf_map = " 101", "\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16"
    scenario.write_text(UAC_SCENARIO.replace("{tone}", str(tone)).replace("{hold_ms}", str(hold_ms))
                        .replace("{ack_pause}", ack_pause).replace("{key}", key).replace("{dtmf_pt}", dtmf_pt)
                        .replace("{dtmf_map}", dtmf_map))  # fmt: skip
    (work / "agent.xml").write_text(UAS_SCENARIO)
    return scenario


#: rtpengine ports a call holds: RTP and RTCP for each of an rtpengine call's two sides; PJSIP's media workers
#: put two rtpengine calls in each call (caller ↔ worker, worker ↔ agent), rtpengine's media plane and the bare
#: path one.
PORTS_PER_CALL = {"pjsip": 8, "rtpengine": 4, "bare": 4}


#: At most this many: the lab's media span (``MEDIA_PORTS``) has 10,000 ports, and other stacks on the machine use
#: it too. 16 ports a call (as before for every path) did not fit from 625 concurrent calls on (700: 11,200).
MAX_RTP_PORTS = 8000


def rtp_ports(concurrent: int, path: str = "pjsip") -> int:
    """rtpengine's port range for ``concurrent`` calls on ``path`` (``PORTS_PER_CALL``): room for twice as many
    calls (PJSIP's workers) or three times (rtpengine's media plane, the bare path: a loaded CTI holds calls
    past sipp's BYE, 650 at once for 500 concurrent, and rtpengine refuses an offer with "Ran out of ports"),
    at least 1,600 ports, at most ``MAX_RTP_PORTS``."""
    headroom = 2 if path == "pjsip" else 3
    return max(1600, min(MAX_RTP_PORTS, concurrent * PORTS_PER_CALL[path] * headroom))


def kamailio_children(concurrent: int) -> int:
    """Kamailio's UDP workers: 4, and one more for each 100 calls over 400. A worker waits for each rtpengine
    command it sends (offer, answer, delete) and drops nothing meanwhile only if others read the socket: with 4
    at 500 concurrent calls its SIP socket dropped 4,398 datagrams in one run (ACKs among them)."""
    return max(4, concurrent // 100)


def _run(
    work: Path,
    scenario: Path,
    concurrent: int,
    seconds: float,
    call_s: float,
    workers: int,
    engine: str,
    prompt_s: float = 0.0,
    dtmf: bool = False,
) -> dict[str, Any]:
    rate = concurrent / call_s
    total = max(1, round(rate * seconds))
    ports = Ports()
    try:
        with SipStack(work / "lab", rtp_port_count=rtp_ports(concurrent, engine), cti_workers=workers,
                      kamailio_children=kamailio_children(concurrent), cti_engine=engine) as stack:  # fmt: skip
            running = [start_agent(work, stack, ports, scenario.parent / "agent.xml")]
            try:
                options = stack.cti_options(work / "cti", start_timeout_s=20.0 + 0.2 * workers)
                driver = SipDriver(options, tenant_of=lambda dnis: 1)
                try:
                    tally = _Tally()
                    if prompt_s > 0:
                        greeting = driver.prompts.directory / GREETING
                        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(greeting), "synth",  # noqa: S603,S607
                                        str(prompt_s), "sine", "300", "vol", "0.3"], check=True)  # fmt: skip
                    driver.subscribe(lambda event: _route(driver, tally, event, prompt_s, dtmf))
                    groups = {"kamailio+rtpengine": stack.process_groups, "workers": driver.worker_pids,
                              "driver": lambda: [os.getpid()], "sipp": lambda: [p.pid for p in running]}  # fmt: skip

                    def memory_pids() -> list[int]:
                        return [*group_members([*stack.process_groups(), *driver.worker_pids()]), os.getpid()]

                    base_mb = pss_mb(memory_pids())  # before the first call
                    customers = start_customers(work, scenario, CENTER_NUMBER, stack.sip_port, rate, concurrent,
                                                total, seconds, call_s, ports)  # fmt: skip
                    running.append(customers)
                    window = watch(customers, groups, lambda: len(driver.live_calls()), memory_pids, base_mb,
                                   seconds, call_s)  # fmt: skip
                    deadline = time.monotonic() + 15  # the CTI's ends of the last calls
                    while time.monotonic() < deadline and driver.live_calls():
                        time.sleep(0.1)
                    live_at_end = len(driver.live_calls())
                    recordings_lag_s = await_recordings(stack, engine)
                finally:
                    driver.close()
            finally:
                stop_sipp(running)
    finally:
        ports.release()
    report = _report(work, tally, concurrent, seconds, call_s, workers, total, window, live_at_end, engine)
    report["recordings_lag_s"] = recordings_lag_s
    return report


def await_recordings(stack: SipStack, engine: str, *, limit_s: float = 180.0, stalled_s: float = 10.0) -> float | None:
    """On rtpengine's media plane the CTI turns each call's pcap into its WAV after the call, one at a time, and
    ``SipDriver.close`` gives it 10 s to stop before killing it (the WAVs still queued are lost): wait until no
    pcap is left (at most ``limit_s``; or until their number has not dropped for ``stalled_s``: pcaps nobody
    converts). Returns the seconds waited after the CTI's last call ended (how far the recordings lag behind
    the calls); ``None`` with PJSIP's workers, which write their WAVs during the call."""
    if engine != "rtpengine":
        return None
    pcaps = stack.recording_dir / "pcaps"
    started = last_drop = time.monotonic()
    left = len(list(pcaps.glob("*.pcap")))
    while left and time.monotonic() - started < limit_s and time.monotonic() - last_drop < stalled_s:
        time.sleep(0.2)
        now_left = len(list(pcaps.glob("*.pcap")))
        if now_left < left:
            last_drop = time.monotonic()
        left = now_left
    return round(time.monotonic() - started, 1)


class Ports:
    """Port blocks for one phase's sipp (``ports(count)`` reserves one), released together at its end."""

    def __init__(self) -> None:
        self.blocks: list[tuple[int, int]] = []

    def __call__(self, count: int) -> int:
        base = reserve_ports(count, align=4)
        self.blocks.append((base, count))
        return base

    def release(self) -> None:
        for base, count in self.blocks:
            release_ports(base, count)
        self.blocks.clear()


def start_agent(work: Path, stack: SipStack, ports: Ports, scenario: Path) -> subprocess.Popen[bytes]:
    """The sipp UAS, echoing the audio, registered in ``stack`` as ``AGENT``."""
    agent_port = ports(4)
    agent = _sipp(work, "uas.log", ports, [
        "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(agent_port), "-rtp_echo",
        "-mp", str(ports(4)), "-trace_err", "-error_file", str(work / "uas-errors.log"),
    ])  # fmt: skip
    try:
        _register_agent(stack, f"sip:{AGENT}@127.0.0.1:{agent_port}")
    except BaseException:
        stop_sipp([agent])
        raise
    return agent


def stop_sipp(running: Iterable[subprocess.Popen[bytes]]) -> None:
    for sipp in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sipp.pid, 15)
        sipp.wait(5)


@dataclass
class Window:
    """One phase's steady part (from the first call's end to the last call's start): each process group's
    CPU seconds and the machine's ticks at its two ends, live calls (every 0.25 s) and memory (every
    ``MEMORY_EVERY_S``) in between; memory before the first call too. Reading the memory costs this process
    ~1 ms of CPU per process read: ``sampling_s``, taken off the driver's share."""

    memory_base_mb: tuple[float, float]
    started: float
    load_start: tuple[float, float, float]
    machine_start: tuple[int, int]
    start: float = 0.0
    end: float = 0.0
    cpu_start: dict[str, float] = field(default_factory=dict)
    cpu_end: dict[str, float] = field(default_factory=dict)
    machine_end: tuple[int, int] = (0, 1)
    load_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    concurrency: list[int] = field(default_factory=list)
    memory_mb: list[tuple[float, float]] = field(default_factory=list)
    sampling_s: float = 0.0  # this process's CPU reading memory inside the window: not the driver's work

    def figures(self) -> dict[str, Any]:
        """What both phases report alike: concurrency, CPU (% of one core; sipp apart), memory, the machine."""
        wall = max(1e-6, self.end - self.start)
        spent = {name: end - self.cpu_start.get(name, 0.0) for name, end in self.cpu_end.items()}
        if "driver" in spent:
            spent["driver"] = max(0.0, spent["driver"] - self.sampling_s)
        cpu_by = {name: round(100 * cpu_s / wall, 1) for name, cpu_s in spent.items()}
        steady = self.concurrency or [0]
        mean = statistics.fmean(steady)
        # Per call: what the processes' own memory (anonymous and shared, file pages left out) grew by.
        memory = [statistics.fmean(column) for column in zip(*self.memory_mb, strict=True)] or None
        grown = None if memory is None else memory[1] - self.memory_base_mb[1]
        per_call = grown / mean if grown is not None and mean > 0 else None
        busy = self.machine_end[0] - self.machine_start[0]
        machine_total = max(1, self.machine_end[1] - self.machine_start[1])
        return {
            "peak_concurrent": max(steady),
            "mean_concurrent": round(mean, 1),
            "cpu_percent": round(sum(v for k, v in cpu_by.items() if k != "sipp"), 1),
            "cpu_by": cpu_by,
            "cpu_window_s": round(wall, 1),
            "rss_mb_before": round(self.memory_base_mb[0], 1),
            "rss_mb_total": None if memory is None else round(memory[0], 1),
            "rss_mb_per_call": None if per_call is None else round(per_call, 2),
            "machine_busy_percent": round(100 * busy / machine_total * (os.cpu_count() or 1), 1),
            "loadavg_before": [round(x, 2) for x in self.load_start],
            "loadavg_after": [round(x, 2) for x in self.load_end],
        }


#: Memory samples during the steady part, this far apart (each reads every process's smaps_rollup).
MEMORY_EVERY_S = 5.0


def watch(
    customers: subprocess.Popen[bytes], groups: dict[str, Callable[[], list[int]]], live: Callable[[], int],
    memory_pids: Callable[[], list[int]], memory_base_mb: tuple[float, float], seconds: float, call_s: float,
) -> Window:  # fmt: skip
    """Follow the customers' sipp to its end (see ``Window``)."""
    w = Window(memory_base_mb, time.monotonic(), os.getloadavg(), _machine_ticks())
    steady_from = w.started + (call_s if seconds > call_s + 2 else 0.0)
    steady_to = w.started + seconds
    next_memory = steady_from
    while customers.poll() is None:
        now = time.monotonic()
        if not w.start and now >= steady_from:
            w.cpu_start, w.start, w.machine_start = _cpu_by(groups), now, _machine_ticks()
        if w.start and not w.end and now >= steady_to:
            w.cpu_end, w.end, w.machine_end = _cpu_by(groups), now, _machine_ticks()
        if steady_from <= now <= steady_to:
            w.concurrency.append(live())
            if now >= next_memory:
                cpu_before = time.thread_time()
                w.memory_mb.append(pss_mb(memory_pids()))
                w.sampling_s += time.thread_time() - cpu_before if w.start and not w.end else 0.0
                next_memory = now + MEMORY_EVERY_S
        time.sleep(0.25)
    if not w.end:  # sipp ended early (a failure, or a run shorter than a call)
        w.cpu_end, w.end, w.machine_end = _cpu_by(groups), time.monotonic(), _machine_ticks()
        w.start = w.start or w.started
    w.load_end = os.getloadavg()
    return w


def pss_mb(pids: Iterable[int]) -> tuple[float, float]:
    """These processes' summed proportional set size (``/proc/<pid>/smaps_rollup``), MB: a page shared by n
    processes counts 1/n in each, so Kamailio's shared memory and the workers' libraries count once, not once
    per process as in RSS. Returned whole, and without its file pages (code, libraries: ``Pss_File``), which do
    not grow with calls but whose shares move whenever another program maps the same files."""
    pss_kb = file_kb = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                fields = dict(line.split()[:2] for line in rollup if line.startswith(("Pss:", "Pss_File:")))
            pss_kb, file_kb = pss_kb + int(fields["Pss:"]), file_kb + int(fields.get("Pss_File:", 0))
        except (OSError, ValueError, KeyError):
            continue  # it ended
    return pss_kb / 1024, (pss_kb - file_kb) / 1024


def _register_agent(stack: SipStack, contact: str) -> None:
    """The sipp UAS as a registered agent: a permanent contact in Kamailio's location table. Kamailio 5.6's
    ``ul.add`` takes table, AOR, contact, expires (0: permanent), q, path (``s:0``: none; a bare 0 or an empty
    string is refused as a wrong format), flags, cflags and methods (all: 0xFFFFFFFF). kamcmd exits 0 even on
    an error, so the contact is checked."""
    reply = stack.kamcmd("ul.add", "location", AGENT, contact, "0", "1.0", "s:0", "0", "0", "4294967295")
    if contact not in stack.registered_contacts(AGENT):
        raise LabError(f"kamcmd ul.add did not register {AGENT}: {reply.strip()}")


def start_customers(
    work: Path, scenario: Path, service: str, sip_port: int, rate: float, concurrent: int, total: int,
    seconds: float, call_s: float, ports: Ports,
) -> subprocess.Popen[bytes]:  # fmt: skip
    """The customers' sipp: ``rate`` calls a second to ``service`` (a number, a user), ``concurrent`` at most."""
    # sipp 3.6.1's rtp_stream sends every call's audio from the -mp socket (rtpengine tells the calls apart).
    return _sipp(work, "customers.log", ports, [
        "-sf", str(scenario), "-s", service, "-i", "127.0.0.1", "-p", str(ports(4)), "-mp", str(ports(4)),
        "-r", f"{rate:.3f}", "-l", str(concurrent), "-m", str(total),
        "-timeout", f"{int(seconds + call_s + 60)}s", "-timeout_error", "-max_retrans", "5",
        "-trace_stat", "-stf", str(work / "customers.csv"), "-fd", "1",
        "-trace_rtt", "-rtt_freq", "1", "-trace_err", "-error_file", str(work / "customers-errors.log"),
        f"127.0.0.1:{sip_port}",
    ])  # fmt: skip


def _sipp(work: Path, log_name: str, ports: Ports, args: list[str]) -> subprocess.Popen[bytes]:
    """sipp in its own process group, in ``work``, its screen to a log file; its UDP control socket (which
    sipp binds on every interface) on a port of ours rather than 8888 and up."""
    with open(work / log_name, "wb") as log:
        argv = ["sipp", *args, "-cp", str(ports(4)), "-nostdin"]
        return subprocess.Popen(argv, cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603


#: The greeting ``--prompt-s`` plays (a file in the driver's prompt folder: no speech synthesis in the bench).
GREETING = "bench-greeting.wav"


def _route(driver: SipDriver, tally: _Tally, event: DriverEvent, prompt_s: float = 0.0, dtmf: bool = False) -> None:
    """What the IVR does for each call: answer, record, (a greeting of ``prompt_s``,) ring the agent — with
    ``dtmf``, once the caller has keyed "1" (a call whose key is lost never reaches the agent: it fails). The
    set-up time runs from the ring (the greeting and the menu are the IVR's, not the CTI's)."""

    def ring(ref: str) -> None:
        with tally.lock:
            tally.offered[ref] = time.monotonic()
        driver.route_to_agent(ref, AGENT)

    match event:
        case Offered(call_ref=ref):
            driver.answer(ref)
            driver.record(ref, RecordingState.STARTED)
            if prompt_s > 0:
                driver.play(ref, GREETING)
            if dtmf:
                return  # the key rings the agent
            if prompt_s > 0:
                timer = threading.Timer(prompt_s, ring, args=(ref,))
                timer.daemon = True
                timer.start()
            else:
                ring(ref)
        case DtmfReceived(call_ref=ref, digits=digits) if dtmf and digits == "1":
            with tally.lock:
                first = ref not in tally.keyed
                tally.keyed.add(ref)
            if first:
                ring(ref)
        case RecordingChanged(call_ref=ref, state=RecordingState.STARTED):
            with tally.lock:
                tally.recording.add(ref)
        case Bridged(call_ref=ref):
            with tally.lock:
                tally.bridged.add(ref)
                tally.setup_ms.append((time.monotonic() - tally.offered[ref]) * 1000)
        case Ended(call_ref=ref, cause=cause):
            with tally.lock:
                tally.causes[cause.value] = tally.causes.get(cause.value, 0) + 1
                if ref in tally.bridged and ref in tally.recording and cause is EndCause.NORMAL:
                    tally.completed += 1
                else:
                    tally.failed += 1


def _report(
    work: Path, tally: _Tally, concurrent: int, seconds: float, call_s: float, workers: int, total: int,
    window: Window, live_at_end: int, engine: str,
) -> dict[str, Any]:  # fmt: skip
    stats = sipp_stats(work / "customers.csv")
    calls = stats.get("TotalCallCreated", total)
    sipp_ok, sipp_failed = stats.get("SuccessfulCall(C)", 0), stats.get("FailedCall(C)", 0)
    # A call is completed when both sides say so: the CTI joined, recorded and ended it normally, and sipp
    # got through its scenario. Everything else sipp made failed, whatever the reason.
    completed = min(tally.completed, sipp_ok)
    setup = sorted(tally.setup_ms)
    answer = sorted(sipp_rtts(work))
    recordings = sorted((work / "cti" / "recordings").glob("*.wav"))
    return {
        "concurrent": concurrent,
        "seconds": seconds,
        "call_s": call_s,
        "workers": workers,
        "calls": calls,
        "completed": completed,
        "failed": calls - completed,
        "sipp_failed": sipp_failed,
        "cti_failed": tally.failed,
        "cti_end_causes": tally.causes,
        "cti_live_at_end": live_at_end,
        "recordings": len(recordings),
        "keys_heard": len(tally.keyed),  # --dtmf: calls whose caller's key reached the CTI
        "recordings_ok": sum(1 for path in recordings if _recording_ok(path, call_s)),
        # rtpengine's media plane records each side on its own channel; PJSIP's workers mix them (mono).
        "recordings_two_sided": sum(1 for path in recordings if _two_sided(path)) if engine == "rtpengine" else None,
        "setup_p50_ms": percentile(setup, 0.5),
        "setup_p99_ms": percentile(setup, 0.99),
        "answer_p50_ms": percentile(answer, 0.5),
        "answer_p99_ms": percentile(answer, 0.99),
        **window.figures(),
        "cores": os.cpu_count(),
    }


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, math.ceil(len(values) * q) - 1)], 1)


def _recording_ok(path: Path, call_s: float) -> bool:
    """Most of the call is in the WAV (prompt-free: the whole call is recorded) and it is not silence."""
    try:
        audio = read_wav(path)
    except (LabError, OSError):
        return False
    return audio.seconds >= 0.6 * call_s and audio.rms() > 0.02


def _two_sided(path: Path) -> bool:
    """A two-channel WAV with neither channel silent: the customer's tone on the left, the agent's echo of it on
    the right (the CTI side's channel)."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getnchannels() != 2 or wav.getsampwidth() != 2:
                return False
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, OSError, EOFError):
        return False
    samples = np.frombuffer(frames[: len(frames) - len(frames) % 4], dtype="<i2").reshape(-1, 2)
    if not len(samples):
        return False
    rms = np.sqrt(np.mean((samples.astype(np.float64) / 32768) ** 2, axis=0))
    return bool((rms > 0.02).all())


def _cpu_seconds(pids: Iterable[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / _TICKS


def group_members(leaders: Iterable[int]) -> list[int]:
    """Every process in these process groups (Kamailio's children, sipp)."""
    groups = set(leaders)
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) in groups:
                members.append(int(entry.name))
    return members


def _cpu_by(groups: dict[str, Callable[[], list[int]]]) -> dict[str, float]:
    out = {}
    for name, leaders in groups.items():
        pids = leaders()
        out[name] = _cpu_seconds([os.getpid()] if name == "driver" else group_members(pids))
    return out


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, all cores (``/proc/stat``)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def sipp_stats(stats: Path) -> dict[str, int]:
    """Counters from sipp's statistics file (its last line)."""
    try:
        lines = stats.read_text().strip().splitlines()
    except OSError:
        return {}
    if len(lines) < 2:
        return {}
    out = {}
    for name, value in zip(lines[0].split(";"), lines[-1].split(";"), strict=False):
        if name.endswith("(C)") or name in ("TotalCallCreated", "CurrentCall"):
            with contextlib.suppress(ValueError):
                out[name] = int(value)
    return out


def sipp_rtts(work: Path) -> list[float]:
    """INVITE → 200 OK times (ms) from sipp's ``-trace_rtt`` file."""
    values = []
    for path in work.glob("customer_*_rtt.csv"):
        for line in path.read_text().splitlines()[1:]:
            parts = line.split(";")
            with contextlib.suppress(ValueError, IndexError):
                values.append(float(parts[1]))
    return values
