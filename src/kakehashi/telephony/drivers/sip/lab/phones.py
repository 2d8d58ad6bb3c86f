"""``Phone``: a scripted baresip SIP phone on 127.0.0.1 (register, dial, answer, DTMF, hang up), driven through its
TCP control socket, sending a tone and recording what it hears."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from kakehashi.telephony.drivers.sip.lab.audio import Audio, read_wav, tone_file
from kakehashi.telephony.drivers.sip.lab.ports import release_ports, reserve_ports
from kakehashi.telephony.drivers.sip.lab.processes import LOOPBACK, LabError, _live, _poll, _Process, log_tail

#: Baresip modules a phone loads (all in baresip-core).
PHONE_MODULES = ("g711.so", "alsa.so", "aufile.so", "sndfile.so")
PHONE_APP_MODULES = ("account.so", "menu.so", "ctrl_tcp.so")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


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
