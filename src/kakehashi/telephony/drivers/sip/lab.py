"""A private SIP lab on 127.0.0.1: Kamailio + rtpengine (``SipStack``) and baresip phones (``Phone``).

Used by the SIP tests, ``kakehashi demo --telephony sip`` and ``kakehashi bench sip``::

    with SipStack(work_dir) as stack:
        customer = stack.phone("0312345678", tone_hz=440)
        agent = stack.phone("agent1", tone_hz=660)
        customer.wait_registered(); agent.wait_registered()
        customer.dial("agent1")
        agent.wait_for("CALL_INCOMING"); agent.answer()
        ...

Nothing here leaves the machine: every process binds 127.0.0.1 only, rtpengine rewrites SDP to
127.0.0.1, baresip runs with ``net_interface 127.0.0.1``. Each stack has its own ports, work dir,
Kamailio runtime dir (pid file, ctl socket) and logs, so several stacks coexist with each other and
with the system's own daemons. Readiness is polled (rtpengine ng ``ping``, a SIP OPTIONS to
Kamailio, baresip's control socket and ``reginfo``), never slept for; a start that fails raises
``LabError`` with the tail of the process's log. ``stop()`` ends only the process groups the lab
started.

Kamailio routing (``kamailio.cfg.tmpl``): REGISTER → usrloc in memory; requests from the CTI's
addresses (its media workers: dispatcher set 1) → registered users (404 otherwise); other INVITEs → a
registered R-URI user, else a CTI worker, round robin, the next one when a worker is full (the center's
numbers); every SDP goes through rtpengine (offer/answer/delete).

Browser softphones connect to ``ws_url`` (SIP over WebSocket, ``ws://127.0.0.1:<ws_port>``) and must
authenticate with ephemeral credentials made from ``softphone_secret`` (Kamailio's ``auth_ephemeral``; the
app issues them: ``kakehashi.telephony.api``); rtpengine turns their WebRTC media (ICE, DTLS-SRTP,
rtcp-mux) into plain RTP for everyone else. UDP phones on loopback register without credentials.
"""

from __future__ import annotations

import array
import atexit
import base64
import contextlib
import itertools
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import wave
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from kakehashi.telephony.drivers.sip import bencode

LOOPBACK = "127.0.0.1"
#: Ports for SIP, ng, control sockets and phones: below Linux's ephemeral range (32768–60999),
#: so an outgoing connection elsewhere on the machine does not take a port between check and use.
CONTROL_PORTS = range(20000, 32000)
#: rtpengine's media port ranges (one block per stack).
MEDIA_PORTS = range(10000, 20000)
#: rtpengine uses 4 ports per call (RTP + RTCP, each side): 1600 ports = 400 concurrent calls.
DEFAULT_RTP_PORT_COUNT = 1600
KAMAILIO_TEMPLATE = "kamailio.cfg.tmpl"
#: CTI media workers the stack routes to when not told (``SipOptions.workers`` and ``sip_workers`` match it).
DEFAULT_CTI_WORKERS = 4
#: Ports between two workers' addresses (``sip.driver.PORT_STEP``): worker i is ``cti_port + 2*i``.
CTI_PORT_STEP = 2
#: Baresip modules a phone loads (all in baresip-core).
PHONE_MODULES = ("g711.so", "alsa.so", "aufile.so", "sndfile.so")
PHONE_APP_MODULES = ("account.so", "menu.so", "ctrl_tcp.so")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class LabError(RuntimeError):
    """A lab process failed to start, answer or stop."""


# ---------------------------------------------------------------------------------------------
# Ports


_port_lock = threading.Lock()
_reserved: set[int] = set()


def _ports_in_use() -> set[int]:
    """Local ports bound on this machine (this network namespace), TCP and UDP, v4 and v6."""
    used: set[int] = set()
    for name in ("udp", "udp6", "tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 1 and ":" in parts[1]:
                used.add(int(parts[1].rsplit(":", 1)[1], 16))
    return used


def _can_bind(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                return False
    return True


def reserve_ports(count: int, *, span: range = CONTROL_PORTS, align: int = 2, attempts: int = 200) -> int:
    """Reserve ``count`` consecutive ports free for TCP and UDP on 127.0.0.1; return the first.

    Reserved ports are not handed out again by this process until ``release_ports``. The base is
    random (aligned), so concurrent test runs on one machine rarely even try the same block.
    """
    bases = range(span.start - span.start % align + align, span.stop - count, align)
    if not bases:
        raise LabError(f"no room for {count} ports in {span}")
    with _port_lock:
        for _ in range(attempts):
            base = random.choice(bases)  # noqa: S311 - port spreading, not a secret
            block = range(base, base + count)
            if _reserved.intersection(block) or _ports_in_use().intersection(block):
                continue
            if count <= 32 and not all(_can_bind(port) for port in block):
                continue
            _reserved.update(block)
            return base
    raise LabError(f"found no {count} free consecutive ports in {span.start}-{span.stop - 1}")


def release_ports(base: int, count: int) -> None:
    with _port_lock:
        _reserved.difference_update(range(base, base + count))


# ---------------------------------------------------------------------------------------------
# Processes


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


class _Process:
    """A child process in a process group of its own, stdout/stderr to a log file."""

    def __init__(self, name: str, argv: list[str], log_path: Path, cwd: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        with open(log_path, "ab") as log:
            try:
                self.popen = subprocess.Popen(  # noqa: S603 - argv built here from fixed tool names
                    argv,
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                raise LabError(f"{name}: {argv[0]} is not installed (scripts/services installs it)") from exc
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise LabError(
                f"{self.name} exited with status {self.popen.returncode}; log {self.log_path}:\n"
                f"{log_tail(self.log_path)}"
            )

    def fail(self, what: str) -> LabError:
        return LabError(f"{self.name}: {what}; log {self.log_path}:\n{log_tail(self.log_path)}")

    def _group_members(self) -> list[int]:
        members = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ')'.
            fields = stat.rsplit(")", 1)[-1].split()
            if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == self.pid:
                members.append(int(entry.name))
        return members

    def stop(self, timeout: float = 5.0, grace: float = 1.0) -> None:
        """SIGTERM the process group; again after ``grace`` (baresip waits for open transactions
        after the first and forces its exit on the second); SIGKILL what is left after ``timeout``.
        """
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
            if not self.alive():
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(wait)
        # Children of our group (Kamailio's workers) that outlive the main process.
        deadline = time.monotonic() + timeout
        while members := self._group_members():
            sig = signal.SIGTERM if time.monotonic() < deadline - timeout / 2 else signal.SIGKILL
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)


def _poll(
    what: Callable[[], bool], timeout: float, interval: float = 0.05, check: Callable[[], None] | None = None
) -> bool:
    """Call ``what`` until it is true or ``timeout`` passes; ``check`` may raise to stop early."""
    deadline = time.monotonic() + timeout
    while True:
        if check is not None:
            check()
        if what():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# Everything still running when the interpreter exits (a test run interrupted, a demo killed by ^C).
_live: weakref.WeakSet[SipStack | Phone] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for thing in list(_live):
        with contextlib.suppress(Exception):
            thing.stop()


# ---------------------------------------------------------------------------------------------
# SIP OPTIONS probe and rtpengine ng


def sip_options(host: str, port: int, timeout: float = 1.0) -> int | None:
    """Send one SIP OPTIONS to host:port over UDP; the reply's status code, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.settimeout(timeout)
        lport = sock.getsockname()[1]
        branch = "z9hG4bK" + secrets.token_hex(8)
        call_id = secrets.token_hex(12)
        message = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:{lport};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:lab-probe@{LOOPBACK}:{lport}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {call_id}@{LOOPBACK}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(message.encode(), (host, port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65535)
            except (TimeoutError, ConnectionRefusedError):
                return None
            first = data.split(b"\r\n", 1)[0].decode(errors="replace").split()
            if len(first) >= 2 and first[0] == "SIP/2.0" and call_id.encode() in data:
                return int(first[1])
    return None


def websocket_listening(port: int, host: str = LOOPBACK, timeout: float = 1.0) -> bool:
    """Whether ``ws://host:port`` completes a WebSocket handshake for the ``sip`` subprotocol (101)."""
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    request = (
        f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
    )
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(request.encode())
            reply = b""
            while b"\r\n" not in reply:
                data = sock.recv(4096)
                if not data:
                    break
                reply += data
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.1 101")


def rtpengine_ng(
    port: int, command: str, *, host: str = LOOPBACK, timeout: float = 2.0, **params: Any
) -> dict[str, Any]:
    """One rtpengine ng command (``ping``, ``list``, ``query``, ``offer``…); the reply dictionary.

    Parameter names use ``_`` for ``-`` (``call_id="…"`` sends ``call-id``).
    """
    cookie = secrets.token_hex(6)
    body = {"command": command, **{key.replace("_", "-"): value for key, value in params.items()}}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(cookie.encode() + b" " + bencode.encode(body), (host, port))
        deadline = time.monotonic() + timeout
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(1 << 20)
            except (TimeoutError, ConnectionRefusedError) as exc:
                raise LabError(f"rtpengine ng {host}:{port}: no answer to {command!r}") from exc
            got_cookie, _, payload = data.partition(b" ")
            if got_cookie.decode(errors="replace") != cookie:
                continue  # a late answer to an earlier request
            reply = bencode.decode(payload)
            if not isinstance(reply, dict):
                raise LabError(f"rtpengine ng: unexpected reply {reply!r}")
            return reply


# ---------------------------------------------------------------------------------------------
# The stack


class SipStack:
    """Kamailio (registrar + proxy) and rtpengine (media relay) on 127.0.0.1, private to this object.

    ``work_dir`` holds the rendered kamailio.cfg, logs, and the phones' dirs; without one a
    temporary dir is made (and removed by ``stop()``). Calls to the center's numbers go to the CTI's
    media workers: ``cti_ports`` (the addresses' ports on ``cti_host``), or ``cti_workers`` ports from
    ``cti_port`` on, two apart (``cti_port + 2*i``, as ``SipDriver`` binds them). ``cti_port`` alone means
    one worker there (bind it yourself); nothing given, ``DEFAULT_CTI_WORKERS`` ports are picked free.
    ``cti_port`` is then the first worker's port (what ``SipOptions.worker_port`` takes).
    ``dtmf_log_port``: rtpengine sends a JSON datagram per DTMF event to 127.0.0.1:<port>.
    ``softphone_secret``: the secret Kamailio checks browser softphones' ephemeral credentials with (the app's
    ``softphone_secret``); a new random one per stack when not given. Browsers connect to ``ws_url``.
    """

    def __init__(
        self,
        work_dir: Path | str | None = None,
        *,
        cti_port: int | None = None,
        cti_host: str = LOOPBACK,
        cti_ports: list[int] | None = None,
        cti_workers: int | None = None,
        rtp_port_count: int = DEFAULT_RTP_PORT_COUNT,
        dtmf_log_port: int | None = None,
        softphone_secret: str | None = None,
        kamailio_children: int = 4,
        kamailio_log_level: int = 2,
        rtpengine_log_level: int = 6,
        startup_timeout: float = 15.0,
    ) -> None:
        self._own_work_dir = work_dir is None
        self.work_dir = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="kakehashi-sip-"))
        self.cti_host = cti_host
        self._requested_cti_port = cti_port
        self._requested_cti_ports = list(cti_ports) if cti_ports else None
        if self._requested_cti_ports:
            self.cti_workers = len(self._requested_cti_ports)
        else:
            self.cti_workers = cti_workers or (1 if cti_port is not None else DEFAULT_CTI_WORKERS)
        if self.cti_workers < 1:
            raise ValueError("cti_workers must be 1 or more")
        self.cti_ports: list[int] = []
        self.rtp_port_count = rtp_port_count
        self.dtmf_log_port = dtmf_log_port
        if softphone_secret is not None and not re.fullmatch(r"[A-Za-z0-9_\-+/=.]{16,200}", softphone_secret):
            raise ValueError("softphone_secret: 16-200 characters of A-Z a-z 0-9 _ - + / = .")
        self.softphone_secret = softphone_secret or secrets.token_urlsafe(32)
        self.kamailio_children = kamailio_children
        self.kamailio_log_level = kamailio_log_level
        self.rtpengine_log_level = rtpengine_log_level
        self.startup_timeout = startup_timeout
        self.kamailio_cfg = self.work_dir / "kamailio.cfg"
        self.kamailio_log = self.work_dir / "kamailio.log"
        self.dispatcher_list = self.work_dir / "dispatcher.list"
        self.rtpengine_log = self.work_dir / "rtpengine.log"
        self.sip_port = 0
        self.ws_port = 0
        self.ng_port = 0
        self.rtp_port_min = 0
        self.rtp_port_max = 0
        self.runtime_dir = self.work_dir
        self._own_runtime_dir = False
        self._reservations: list[tuple[int, int]] = []
        self._rtpengine: _Process | None = None
        self._kamailio: _Process | None = None
        self._phones: list[Phone] = []
        self._lock = threading.Lock()

    # -- addresses

    @property
    def sip_address(self) -> tuple[str, int]:
        return (LOOPBACK, self.sip_port)

    @property
    def ws_url(self) -> str:
        """Where browser softphones connect: SIP over WebSocket (``ws://127.0.0.1:<ws_port>``; "" before ``start``)."""
        return f"ws://{LOOPBACK}:{self.ws_port}" if self.ws_port else ""

    @property
    def softphone_domain(self) -> str:
        """The SIP domain of browser softphones' URIs (``sip:<agent>@<domain>``)."""
        return LOOPBACK

    @property
    def cti_port(self) -> int:
        """The first CTI worker's port (0 before ``start``)."""
        return self.cti_ports[0] if self.cti_ports else 0

    @cti_port.setter
    def cti_port(self, port: int) -> None:
        self.cti_ports = [port + CTI_PORT_STEP * i for i in range(self.cti_workers)]

    @property
    def cti_address(self) -> tuple[str, int]:
        return (self.cti_host, self.cti_port)

    @property
    def cti_addresses(self) -> list[tuple[str, int]]:
        return [(self.cti_host, port) for port in self.cti_ports]

    @property
    def ng_address(self) -> tuple[str, int]:
        return (LOOPBACK, self.ng_port)

    @property
    def ctl_socket(self) -> Path:
        return self.runtime_dir / "kamailio_ctl"

    def sip_uri(self, user: str) -> str:
        """``sip:<user>@127.0.0.1:<sip_port>``: a number or agent name as Kamailio routes it."""
        return f"sip:{user}@{LOOPBACK}:{self.sip_port}"

    @property
    def running(self) -> bool:
        return (
            self._kamailio is not None
            and self._kamailio.alive()
            and self._rtpengine is not None
            and self._rtpengine.alive()
        )

    # -- life cycle

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> Self:
        """Start rtpengine then Kamailio; return when both answer (new ports, up to twice, when
        another program took one of ours between the check and the start)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        _live.add(self)
        for attempt in range(3):
            try:
                self._start_once()
                return self
            except LabError as exc:
                clash = "already in use" in str(exc).lower()  # another run took a port we picked
                self._stop_processes()
                self._release()
                if not clash or attempt == 2:
                    self.stop()
                    raise
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _start_once(self) -> None:
        self._choose_ports()
        self._start_rtpengine()
        self._write_kamailio_cfg()
        self._start_kamailio()

    def _reserve(self, count: int, span: range = CONTROL_PORTS) -> int:
        base = reserve_ports(count, span=span)
        self._reservations.append((base, count))
        return base

    def _release(self) -> None:
        for base, count in self._reservations:
            release_ports(base, count)
        self._reservations.clear()

    def _choose_ports(self) -> None:
        self.sip_port = self._reserve(1)
        self.ws_port = self._reserve(1)
        self.ng_port = self._reserve(1)
        if self._requested_cti_ports:
            self.cti_ports = list(self._requested_cti_ports)
        elif self._requested_cti_port is not None:
            self.cti_port = self._requested_cti_port
        else:
            self.cti_port = self._reserve(CTI_PORT_STEP * self.cti_workers)
        base = self._reserve(self.rtp_port_count, MEDIA_PORTS)
        self.rtp_port_min, self.rtp_port_max = base, base + self.rtp_port_count - 1
        # ctl's unix socket path must fit in sun_path (108 bytes): pytest's tmp dirs may not.
        if len(str(self.work_dir / "kamailio_ctl")) > 100:
            if not self._own_runtime_dir:
                self.runtime_dir = Path(tempfile.mkdtemp(prefix="kk-sip-"))
                self._own_runtime_dir = True
        else:
            self.runtime_dir = self.work_dir

    def _start_rtpengine(self) -> None:
        argv = [
            "rtpengine",
            "--config-file=none",
            "--foreground",
            "--log-stderr",
            f"--log-level={self.rtpengine_log_level}",
            "--table=-1",
            f"--interface={LOOPBACK}",
            f"--listen-ng={LOOPBACK}:{self.ng_port}",
            f"--port-min={self.rtp_port_min}",
            f"--port-max={self.rtp_port_max}",
            "--delete-delay=0",
        ]
        if self.dtmf_log_port is not None:
            argv.append(f"--dtmf-log-dest={LOOPBACK}:{self.dtmf_log_port}")
        self._rtpengine = proc = _Process("rtpengine", argv, self.rtpengine_log, self.work_dir)

        def pong() -> bool:
            try:
                return rtpengine_ng(self.ng_port, "ping", timeout=0.3).get("result") == "pong"
            except LabError:
                return False

        if not _poll(pong, self.startup_timeout, check=proc.check_alive):
            raise proc.fail(f"no pong on ng port {self.ng_port} within {self.startup_timeout:.0f} s")

    def render_kamailio_cfg(self) -> str:
        """The Kamailio config for this stack's ports; also writes the dispatcher list it names (the CTI's
        media workers, set 1) next to it."""
        self.write_dispatcher_list()
        template = resources.files(__package__).joinpath(KAMAILIO_TEMPLATE).read_text()
        values = {
            "SIP_PORT": self.sip_port,
            "WS_PORT": self.ws_port,
            "SOFTPHONE_SECRET": self.softphone_secret,
            "NG_PORT": self.ng_port,
            "DISPATCHER_LIST": self.dispatcher_list,
            "CTI_WORKERS": len(self.cti_ports),
            "CTI_FIRST": f"{self.cti_host}:{self.cti_port}",
            "CTL_SOCKET": self.ctl_socket,
            "CHILDREN": self.kamailio_children,
            "LOG_LEVEL": self.kamailio_log_level,
        }
        for key, value in values.items():
            template = template.replace("{{" + key + "}}", str(value))
        if "{{" in template:
            start = template.index("{{")
            raise LabError(f"unfilled placeholder in {KAMAILIO_TEMPLATE}: {template[start : start + 40]!r}")
        return template

    def write_dispatcher_list(self) -> Path:
        """Dispatcher set 1: one line per CTI media worker (``setid destination``)."""
        self.dispatcher_list.parent.mkdir(parents=True, exist_ok=True)
        lines = ["# set 1: the CTI's media workers (written by SipStack)"]
        lines += [f"1 sip:{host}:{port}" for host, port in self.cti_addresses]
        self.dispatcher_list.write_text("\n".join(lines) + "\n")
        return self.dispatcher_list

    def _write_kamailio_cfg(self) -> None:
        # It holds the softphone secret: readable by this user only.
        self.kamailio_cfg.touch(mode=0o600)
        self.kamailio_cfg.chmod(0o600)
        self.kamailio_cfg.write_text(self.render_kamailio_cfg())

    def _start_kamailio(self) -> None:
        argv = [
            "kamailio",
            "-f", str(self.kamailio_cfg),
            "-DD",
            "-E",
            "-P", str(self.runtime_dir / "kamailio.pid"),
            "-Y", str(self.runtime_dir),
            "-w", str(self.work_dir),
            "-m", "128",
            "-M", "16",
        ]  # fmt: skip
        # Kamailio logs auth_ephemeral's secret when it starts: the log is as private as the config.
        self.kamailio_log.touch(mode=0o600)
        self.kamailio_log.chmod(0o600)
        self._kamailio = proc = _Process("kamailio", argv, self.kamailio_log, self.work_dir)

        def options_ok() -> bool:
            return sip_options(LOOPBACK, self.sip_port, timeout=0.3) == 200

        if not _poll(options_ok, self.startup_timeout, check=proc.check_alive):
            raise proc.fail(f"no 200 to OPTIONS on udp port {self.sip_port} within {self.startup_timeout:.0f} s")
        if not _poll(lambda: websocket_listening(self.ws_port), self.startup_timeout, check=proc.check_alive):
            raise proc.fail(f"no WebSocket handshake on tcp port {self.ws_port} within {self.startup_timeout:.0f} s")

    def stop(self) -> None:
        """Stop the phones made by ``phone()``, then Kamailio and rtpengine (their groups only)."""
        for phone in list(self._phones):
            phone.stop()
        self._phones.clear()
        self._stop_processes()
        self._release()
        if self._own_runtime_dir:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
            self._own_runtime_dir = False
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        _live.discard(self)

    def _stop_processes(self) -> None:
        for proc in (self._kamailio, self._rtpengine):
            if proc is not None:
                proc.stop()
        self._kamailio = self._rtpengine = None

    @property
    def phones(self) -> list[Phone]:
        return list(self._phones)

    def process_groups(self) -> list[int]:
        """Process group ids (= leaders' pids) of everything this stack and its phones run now."""
        procs = [self._rtpengine, self._kamailio, *(phone._proc for phone in self._phones)]
        return [proc.pid for proc in procs if proc is not None and proc.alive()]

    # -- phones

    def phone(self, user: str, **options: Any) -> Phone:
        """Start a baresip phone registered as ``user`` here (see ``Phone`` for the options)."""
        if not self.running:
            raise LabError("the stack is not running")
        options.setdefault("tone_dir", self.work_dir / "tones")
        if any(phone.user == user and phone.running for phone in self._phones):
            raise LabError(f"a phone {user} is already running on this stack")
        phone = Phone(user, sip_port=self.sip_port, work_dir=self.work_dir / "phones" / user, **options)
        with self._lock:
            self._phones.append(phone)
        try:
            return phone.start()
        except BaseException:
            phone.stop()
            raise

    # -- control

    def ng(self, command: str, **params: Any) -> dict[str, Any]:
        """An rtpengine ng command on this stack's rtpengine (see ``rtpengine_ng``)."""
        return rtpengine_ng(self.ng_port, command, **params)

    def rtpengine_call_ids(self) -> list[str]:
        """Call-IDs of the calls rtpengine is relaying now."""
        reply = self.ng("list", limit=1000)
        calls = reply.get("calls", [])
        return [str(call) for call in calls] if isinstance(calls, list) else []

    def rtpengine_query(self, call_id: str) -> dict[str, Any]:
        """rtpengine's view of one call: tags, streams (addresses, ports), packet and byte counters."""
        reply = self.ng("query", call_id=call_id)
        if reply.get("result") != "ok":
            raise LabError(f"rtpengine query {call_id}: {reply.get('error-reason', reply)}")
        return reply

    def kamcmd(self, *args: str, timeout: float = 5.0) -> str:
        """Run an RPC command on this Kamailio over its ctl socket (``kamcmd ul.dump``…)."""
        result = subprocess.run(  # noqa: S603 - fixed binary, arguments from the caller's code
            ["kamcmd", "-s", f"unix:{self.ctl_socket}", *args],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise LabError(f"kamcmd {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def registered_contacts(self, user: str) -> list[str]:
        """Contact URIs Kamailio's location table holds for ``user`` (empty when not registered)."""
        try:
            dump = self.kamcmd("ul.lookup", "location", user)
        except LabError as exc:
            if "not found" in str(exc).lower():
                return []
            raise
        return re.findall(r"^\s*Address: (\S+)", dump, re.M)


# ---------------------------------------------------------------------------------------------
# Audio files


def write_tone_wav(path: Path, hz: float, seconds: float = 120.0, amplitude: float = 0.5, rate: int = 8000) -> Path:
    """A sine tone as 16-bit mono WAV (what baresip's aufile reads: other formats fail).

    Written to a temporary name then renamed, so phones sharing a tone file never read half of it.
    """
    one_second = array.array(
        "h", (round(amplitude * 32767 * math.sin(2 * math.pi * hz * n / rate)) for n in range(rate))
    )
    if sys.byteorder == "big":
        one_second.byteswap()
    chunk = one_second.tobytes()  # whole cycles per second for an integer frequency: loops seamlessly
    whole, part = divmod(round(seconds * rate), rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    with wave.open(str(partial), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(chunk * whole + chunk[: part * 2])
    partial.replace(path)
    return path


def tone_file(directory: Path, hz: float, seconds: float = 120.0) -> Path:
    """A cached tone WAV in ``directory`` (made once per frequency and length)."""
    path = directory / f"tone-{hz:g}Hz-{seconds:g}s.wav"
    return path if path.exists() else write_tone_wav(path, hz, seconds)


@dataclass(frozen=True)
class Audio:
    """Mono 16-bit samples of a WAV file (baresip's sndfile dumps)."""

    samples: array.array[int]
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate if self.rate else 0.0

    def rms(self) -> float:
        """Root mean square, 0.0 (silence) to 1.0 (full scale)."""
        if not self.samples:
            return 0.0
        return math.sqrt(sum(s * s for s in self.samples) / len(self.samples)) / 32768.0

    def tone_hz(self, threshold: float = 0.02) -> float:
        """Estimated frequency of a pure tone, by zero crossings over the non-silent part."""
        limit = threshold * 32768
        loud = [s for s in self.samples if abs(s) > limit]
        if len(loud) < self.rate // 10:
            return 0.0
        # Only the stretch from first to last loud sample (calls start and end with silence).
        first = next(i for i, s in enumerate(self.samples) if abs(s) > limit)
        last = len(self.samples) - next(i for i, s in enumerate(reversed(self.samples)) if abs(s) > limit)
        span = self.samples[first:last]
        crossings = sum(1 for a, b in itertools.pairwise(span) if (a < 0) != (b < 0))
        return crossings / 2 / (len(span) / self.rate)


def read_wav(path: Path) -> Audio:
    """Read a 16-bit PCM WAV, also one still being written (its header sizes not yet final)."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise LabError(f"{path}: not a WAV file")
    pos, rate, channels, width = 12, 0, 1, 2
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if chunk_id == b"fmt ":
            channels = int.from_bytes(data[body + 2 : body + 4], "little")
            rate = int.from_bytes(data[body + 4 : body + 8], "little")
            width = int.from_bytes(data[body + 14 : body + 16], "little") // 8
        elif chunk_id == b"data":
            end = body + size if 0 < size <= len(data) - body else len(data)
            raw = data[body:end]
            if width != 2:
                raise LabError(f"{path}: {width * 8}-bit samples, 16-bit expected")
            raw = raw[: len(raw) - len(raw) % (2 * channels)]
            samples = array.array("h")
            samples.frombytes(raw)
            if sys.byteorder == "big":
                samples.byteswap()
            if channels > 1:
                samples = samples[::channels]
            return Audio(samples, rate)
        pos = body + size + (size & 1)
    return Audio(array.array("h"), rate)


# ---------------------------------------------------------------------------------------------
# Phones


@dataclass(frozen=True)
class PhoneEvent:
    """One baresip event (ctrl_tcp JSON): ``type`` is CALL_INCOMING, CALL_ESTABLISHED, REGISTER_OK…"""

    type: str
    klass: str = ""
    peer_uri: str = ""
    call_id: str = ""
    param: str = ""
    direction: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
    at: float = 0.0

    @property
    def peer_user(self) -> str:
        """The user part of the peer URI (the caller's number, the agent's name)."""
        uri = self.peer_uri.strip("<>")
        uri = uri.split(":", 1)[1] if ":" in uri else uri
        return uri.split("@", 1)[0] if "@" in uri else ""


class Phone:
    """A scripted SIP phone: one baresip process driven over its ``ctrl_tcp`` socket.

    ``user`` is an agent name (``agent1``) or a number (``0312345678``); the phone registers
    ``sip:<user>@127.0.0.1:<sip_port>``. It plays ``audio_file`` (a 16-bit 8 kHz mono WAV) or a
    generated ``tone_hz`` sine of ``tone_seconds`` (cached in ``tone_dir``) to whoever it talks
    to, and dumps what it hears per call (``received_audio()``). baresip 1.0 ends the call when
    the file ends, so the file's length is the longest call the phone can hold (a scripted
    caller can use that: play a message, hang up). ``auto_answer`` answers every incoming call.
    """

    def __init__(
        self,
        user: str,
        *,
        sip_port: int,
        work_dir: Path | str,
        tone_hz: float = 440.0,
        tone_seconds: float = 120.0,
        tone_dir: Path | None = None,
        audio_file: Path | None = None,
        auto_answer: bool = False,
        display_name: str | None = None,
        startup_timeout: float = 10.0,
        register_expires: int = 3600,
    ) -> None:
        self.user = user
        self.sip_port = sip_port
        self.work_dir = Path(work_dir)
        self.record_dir = self.work_dir / "recordings"
        self.log_path = self.work_dir / "baresip.log"
        self.tone_hz = tone_hz
        self.tone_seconds = tone_seconds
        self.tone_dir = tone_dir or self.work_dir
        self.audio_file = audio_file
        self.auto_answer = auto_answer
        self.display_name = display_name
        self.startup_timeout = startup_timeout
        self.register_expires = register_expires
        self.port_base = 0
        self._ports = 0
        self._proc: _Process | None = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._cond = threading.Condition()
        self._events: list[PhoneEvent] = []
        self._consumed: set[int] = set()
        self._responses: dict[str, dict[str, Any]] = {}
        self._tokens = itertools.count(1)
        self._send_lock = threading.Lock()
        self._closed = False  # stop() was called
        self._eof = False  # baresip closed the control connection (it exited)

    # -- addresses

    @property
    def sip_listen_port(self) -> int:
        return self.port_base

    @property
    def ctrl_port(self) -> int:
        return self.port_base + 2

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{LOOPBACK}:{self.sip_port}"

    def uri_for(self, target: str) -> str:
        """A number or name → ``sip:<target>@127.0.0.1:<sip_port>``; a URI is kept as it is."""
        if target.startswith(("sip:", "sips:")):
            return target
        return f"sip:{target}@{LOOPBACK}:{self.sip_port}"

    # -- life cycle

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> Self:
        """Write the config, start baresip and connect to its control socket."""
        _live.add(self)
        self._closed = self._eof = False
        # sip (UDP+TCP) on base, TLS on base+1 (baresip binds it too), ctrl_tcp on base+2, RTP base+4…
        self._ports = 12
        self.port_base = reserve_ports(self._ports, align=4)
        try:
            self._write_config()
            self._proc = proc = _Process(
                f"baresip {self.user}", ["baresip", "-f", str(self.work_dir)], self.log_path, self.work_dir
            )
            if not _poll(self._connect, self.startup_timeout, check=proc.check_alive):
                raise proc.fail(f"control socket 127.0.0.1:{self.ctrl_port} not reachable")
        except BaseException:
            self.stop()
            raise
        return self

    def _write_config(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.record_dir.mkdir(exist_ok=True)
        source = self.audio_file or tone_file(self.tone_dir, self.tone_hz, self.tone_seconds)
        rtp_low = self.port_base + 4
        lines = [
            "poll_method epoll",
            f"sip_listen {LOOPBACK}:{self.port_base}",
            f"net_interface {LOOPBACK}",
            f"ctrl_tcp_listen {LOOPBACK}:{self.ctrl_port}",
            f"rtp_ports {rtp_low}-{rtp_low + 7}",
            "rtp_timeout 0",
            f"audio_source aufile,{min(str(source), os.path.relpath(source, self.work_dir), key=len)}",
            "audio_player alsa,null",
            "audio_alert alsa,null",
            "ausrc_srate 8000",
            "auplay_srate 8000",
            "ausrc_channels 1",
            "auplay_channels 1",
            # Relative to baresip's cwd (the phone's dir): sndfile truncates long paths (~128 bytes).
            f"snd_path {self.record_dir.relative_to(self.work_dir)}",
            "module_path /usr/lib/baresip/modules",
            *(f"module {name}" for name in PHONE_MODULES),
            *(f"module_app {name}" for name in PHONE_APP_MODULES),
        ]
        (self.work_dir / "config").write_text("\n".join(lines) + "\n")
        name = f'"{self.display_name}" ' if self.display_name else ""
        answermode = "auto" if self.auto_answer else "manual"
        account = (
            f"{name}<sip:{self.user}@{LOOPBACK}:{self.sip_port};transport=udp>"
            f";regint={self.register_expires};answermode={answermode};audio_codecs=PCMU,PCMA;ptime=20\n"
        )
        (self.work_dir / "accounts").write_text(account)
        (self.work_dir / "contacts").write_text("")

    def _connect(self) -> bool:
        try:
            sock = socket.create_connection((LOOPBACK, self.ctrl_port), timeout=1.0)
        except OSError:
            return False
        sock.settimeout(None)
        self._sock = sock
        self._reader = threading.Thread(target=self._read_loop, name=f"baresip-{self.user}", daemon=True)
        self._reader.start()
        return True

    def stop(self) -> None:
        """Kill baresip (its process group) and close the control connection."""
        self._closed = True
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            self._proc.stop()
            self._proc = None
        if self._reader is not None:
            self._reader.join(2.0)
            self._reader = None
        if self._ports:
            release_ports(self.port_base, self._ports)
            self._ports = 0
        with self._cond:
            self._cond.notify_all()
        _live.discard(self)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.alive()

    # -- the control protocol (netstring-framed JSON)

    def _read_loop(self) -> None:
        sock = self._sock
        assert sock is not None
        buf = b""
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            buf += data
            while True:
                colon = buf.find(b":")
                if colon < 0 or not buf[:colon].isdigit():
                    if colon > 10 or (colon < 0 and len(buf) > 10):
                        buf = b""  # garbage: resynchronise on the next message
                    break
                length = int(buf[:colon])
                end = colon + 1 + length
                if len(buf) < end + 1:
                    break
                payload, buf = buf[colon + 1 : end], buf[end + 1 :]  # skip the trailing ','
                try:
                    message = json.loads(payload)
                except ValueError:
                    continue
                self._dispatch(message)
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _dispatch(self, message: dict[str, Any]) -> None:
        with self._cond:
            if message.get("response"):
                self._responses[str(message.get("token", ""))] = message
            elif message.get("event"):
                self._events.append(
                    PhoneEvent(
                        type=str(message.get("type", "")),
                        klass=str(message.get("class", "")),
                        peer_uri=str(message.get("peeruri", "")),
                        call_id=str(message.get("id", "")),
                        param=str(message.get("param", "")),
                        direction=str(message.get("direction", "")),
                        raw=message,
                        at=time.monotonic(),
                    )
                )
            self._cond.notify_all()

    def command(self, command: str, params: str = "", timeout: float = 5.0) -> str:
        """Run one baresip command (``dial``, ``accept``, ``hangup``, ``sndcode``, ``reginfo``…).

        Returns the command's text output; raises ``LabError`` when baresip says it failed.
        """
        if self._sock is None:
            raise LabError(f"phone {self.user} is not running")
        token = f"t{next(self._tokens)}"
        payload = json.dumps({"command": command, "params": params, "token": token}).encode()
        with self._send_lock:
            self._sock.sendall(b"%d:%s," % (len(payload), payload))
        deadline = time.monotonic() + timeout
        with self._cond:
            while token not in self._responses:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed or self._eof:
                    raise LabError(f"phone {self.user}: no response to {command!r}; log:\n{log_tail(self.log_path)}")
                self._cond.wait(left)
            response = self._responses.pop(token)
        if not response.get("ok", False):
            raise LabError(f"phone {self.user}: {command} {params!r} failed: {response.get('data', '')}")
        return str(response.get("data", ""))

    # -- events

    def events(self) -> list[PhoneEvent]:
        """Every event so far (consumed or not)."""
        with self._cond:
            return list(self._events)

    def wait_for(
        self,
        event_type: str | Iterable[str],
        timeout: float = 10.0,
        predicate: Callable[[PhoneEvent], bool] | None = None,
    ) -> PhoneEvent:
        """The oldest event of that type (or types) not yet returned by ``wait_for``, waiting for one.

        Each event is returned once, so ``wait_for("CALL_CLOSED")`` twice waits for two calls.
        """
        types = {event_type} if isinstance(event_type, str) else set(event_type)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for index, event in enumerate(self._events):
                    if index in self._consumed or event.type not in types:
                        continue
                    if predicate is None or predicate(event):
                        self._consumed.add(index)
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self._closed or self._eof:
                    seen = ", ".join(e.type for e in self._events[-15:]) or "none"
                    raise LabError(
                        f"phone {self.user}: no {'/'.join(sorted(types))} within {timeout:g} s (last events: {seen}); "
                        f"log {self.log_path}:\n{log_tail(self.log_path, 15)}"
                    )
                self._cond.wait(min(left, 0.5))

    # -- registration and calls

    def registration_ok(self) -> bool:
        """Whether baresip's ``reginfo`` shows the account registered."""
        for line in _ANSI.sub("", self.command("reginfo")).splitlines():
            if f"sip:{self.user}@" in line:
                return "OK" in line.split()
        return False

    def wait_registered(self, timeout: float = 10.0) -> None:
        """Wait until the registrar accepted the phone's REGISTER (polls ``reginfo``)."""
        proc = self._proc
        if not _poll(self.registration_ok, timeout, check=proc.check_alive if proc else None):
            with self._cond:
                failures = [e.param for e in self._events if e.type == "REGISTER_FAIL"]
            why = f" (REGISTER_FAIL: {failures[-1]})" if failures else ""
            raise LabError(
                f"phone {self.user}: not registered within {timeout:g} s{why}; log:\n{log_tail(self.log_path)}"
            )

    def dial(self, target: str) -> None:
        """Call a number, an agent name or a SIP URI (numbers and names go through Kamailio)."""
        self.command("dial", self.uri_for(target))

    def answer(self) -> None:
        """Answer the ringing call."""
        self.command("accept")

    def hangup(self) -> None:
        """Hang up the current call (CANCEL when it has not been answered yet)."""
        self.command("hangup")

    def set_auto_answer(self, on: bool) -> None:
        self.command("answermode", "auto" if on else "manual")
        self.auto_answer = on

    def send_dtmf(self, digits: str, gap: float = 0.25) -> None:
        """Send digits as RFC 4733 telephone-events on the current call, one at a time.

        ``gap`` is the inter-digit time (a digit's tone plus pause), as on a keypad: baresip keeps
        one digit in flight, so faster sending would merge digits.
        """
        for index, digit in enumerate(digits):
            if digit not in "0123456789*#ABCDabcd":
                raise ValueError(f"not a DTMF digit: {digit!r}")
            if index:
                time.sleep(gap)
            self.command("sndcode", digit)

    # -- audio

    def received_audio_files(self) -> list[Path]:
        """Dumps of what the phone heard, one per call (oldest first)."""
        return sorted(self.record_dir.glob("dump-*-dec.wav"), key=lambda p: (p.stat().st_mtime, p.name))

    def sent_audio_files(self) -> list[Path]:
        return sorted(self.record_dir.glob("dump-*-enc.wav"), key=lambda p: (p.stat().st_mtime, p.name))

    def received_audio(self, path: Path | None = None) -> Audio:
        """What the phone heard on its last call (or in ``path``); may be read during the call."""
        if path is None:
            files = self.received_audio_files()
            if not files:
                raise LabError(f"phone {self.user}: no received-audio dump in {self.record_dir}")
            path = files[-1]
        return read_wav(path)

    def received_audio_rms(self, path: Path | None = None) -> float:
        """RMS (0.0–1.0) of what the phone heard on its last call: about 0.35 for a 0.5 tone, 0 for silence."""
        return self.received_audio(path).rms()

    def wait_for_audio(self, min_rms: float = 0.05, timeout: float = 10.0, min_seconds: float = 1.0) -> float:
        """Wait until the last call's received-audio dump holds ``min_seconds`` of audio at ``min_rms``
        or more (RMS over the whole dump, silence before the first packet included); return the RMS.
        """
        level, seconds = 0.0, 0.0

        def heard() -> bool:
            nonlocal level, seconds
            with contextlib.suppress(LabError, OSError):
                audio = self.received_audio()
                level, seconds = audio.rms(), audio.seconds
            return level >= min_rms and seconds >= min_seconds

        if not _poll(heard, timeout, interval=0.1):
            raise LabError(
                f"phone {self.user}: received audio RMS {level:.3f} over {seconds:.1f} s "
                f"(wanted {min_rms} over {min_seconds:g} s) after {timeout:g} s"
            )
        return level


def running_processes() -> Iterator[tuple[int, str]]:
    """(pid, command line) of kamailio, rtpengine and baresip processes on this machine (diagnostics)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if cmdline.split(" ", 1)[0].rsplit("/", 1)[-1] in {"kamailio", "rtpengine", "baresip"}:
            yield int(entry.name), cmdline
