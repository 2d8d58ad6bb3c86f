"""``SipStack``: a private Kamailio + rtpengine on 127.0.0.1, with its phones."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import tempfile
import threading
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from kakehashi.telephony.drivers.sip.lab.kamailio import KAMAILIO_TEMPLATE, sip_options, websocket_listening
from kakehashi.telephony.drivers.sip.lab.phones import Phone
from kakehashi.telephony.drivers.sip.lab.ports import CONTROL_PORTS, MEDIA_PORTS, release_ports, reserve_ports
from kakehashi.telephony.drivers.sip.lab.processes import LOOPBACK, LabError, _live, _poll, _Process
from kakehashi.telephony.drivers.sip.lab.rtpengine import DEFAULT_RTP_PORT_COUNT, rtpengine_ng

if TYPE_CHECKING:
    from kakehashi.telephony.drivers.sip.driver import SipOptions

#: CTI media workers the stack routes to when not told (``SipOptions.workers`` and ``sip_workers`` match it).
DEFAULT_CTI_WORKERS = 4
#: Ports between two workers' addresses (``sip.driver.PORT_STEP``): worker i is ``cti_port + 2*i``.
CTI_PORT_STEP = 2


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
        cti_engine: str = "pjsip",
    ) -> None:
        self._own_work_dir = work_dir is None
        self.work_dir = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="kakehashi-sip-"))
        self.cti_host = cti_host
        self._requested_cti_port = cti_port
        self._requested_cti_ports = list(cti_ports) if cti_ports else None
        if self._requested_cti_ports:
            self.cti_workers = len(self._requested_cti_ports)
        else:
            one = cti_port is not None or cti_engine == "rtpengine"  # the media plane: one signalling process
            self.cti_workers = cti_workers or (1 if one else DEFAULT_CTI_WORKERS)
        if self.cti_workers < 1:
            raise ValueError("cti_workers must be 1 or more")
        self.cti_ports: list[int] = []
        self.rtp_port_count = rtp_port_count
        self.dtmf_log_port = self._dtmf_log_port_given = dtmf_log_port
        if cti_engine not in ("pjsip", "rtpengine"):
            raise ValueError("cti_engine: pjsip or rtpengine")
        self.cti_engine = cti_engine
        #: rtpengine's --recording-dir (pcaps/ and metadata/ within) on the rtpengine media plane.
        self.recording_dir = self.work_dir / "rtp-recordings"
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
        if self.cti_engine == "rtpengine" and self._dtmf_log_port_given is None:
            self.dtmf_log_port = self._reserve(1)  # the plane reads the keys there
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
        # The media plane (ADR 0024): recordings as pcaps the CTI converts; endpoints from the SDP first
        # ("heuristic"): with the default ("delayed") rtpengine sometimes kept sending the caller's audio to the
        # first agent's phone, learned from its last packets, after a transfer had put a colleague there.
        if self.cti_engine == "rtpengine":
            self.recording_dir.mkdir(parents=True, exist_ok=True)
            argv += ["--recording-method=pcap", "--recording-format=raw", f"--recording-dir={self.recording_dir}",
                     "--endpoint-learning=heuristic"]  # fmt: skip
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
            "CTI_OWNS_MEDIA": "#!define CTI_OWNS_MEDIA"
            if self.cti_engine == "rtpengine"
            else "# (PJSIP media workers)",
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

    def cti_options(self, data_dir: Path, **overrides: Any) -> SipOptions:
        """``SipDriver`` options for this stack: its CTI workers' ports and its proxy and, on rtpengine's media
        plane (``cti_engine="rtpengine"``), rtpengine's control address, recording dir and DTMF log port."""
        from kakehashi.telephony.drivers.sip.driver import SipOptions

        options: dict[str, Any] = {"workers": self.cti_workers}
        if self.cti_engine == "rtpengine":
            options |= {"engine": "rtpengine", "ng": f"{LOOPBACK}:{self.ng_port}", "pcap_dir": self.recording_dir,
                        "dtmf_port": self.dtmf_log_port}  # fmt: skip
        return SipOptions(self.cti_port, f"{LOOPBACK}:{self.sip_port}", data_dir, **(options | overrides))

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
