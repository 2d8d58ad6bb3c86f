"""The SIP lab with real processes: Kamailio, rtpengine and baresip phones on 127.0.0.1.

Every test starts its own stack (free ports, its own work dir under tmp_path: logs stay there when
a test fails) and stops it, phones included, whatever happens. No fixed sleeps: every wait polls
with a timeout. scripts/services installs the Debian packages.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kakehashi.telephony.drivers.sip import bencode
from kakehashi.telephony.drivers.sip.lab import (
    LOOPBACK,
    SipStack,
    read_wav,
    release_ports,
    reserve_ports,
    write_tone_wav,
)

CUSTOMER = "0312345678"
CENTER_NUMBER = "0120444444"
CUSTOMER_HZ, AGENT_HZ = 440.0, 660.0
HEARD = 0.1  # RMS of a 0.5-amplitude tone is 0.35; silence (or noise from nowhere) stays near 0


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., SipStack]]:
    """Start stacks (each in its own dir); all of them, and their phones, stop at the end."""
    stacks: list[SipStack] = []

    def make(**options: Any) -> SipStack:
        stack = SipStack(tmp_path / f"stack{len(stacks)}", **options)
        stacks.append(stack)
        return stack.start()

    try:
        yield make
    finally:
        groups = [pgid for stack in stacks for pgid in stack.process_groups()]
        for stack in stacks:
            stack.stop()
        leftovers = [pid for pid, pgid in _process_groups() if pgid in groups]
        assert not leftovers, f"processes left running: {leftovers}"


def _process_groups() -> Iterator[tuple[int, int]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[-1].split()  # state ppid pgrp …
            if fields[0] != "Z":
                yield int(entry.name), int(fields[2])


@pytest.fixture
def udp_port() -> Iterator[Callable[[], socket.socket]]:
    """UDP sockets on free 127.0.0.1 ports (reserved so the lab does not hand them out)."""
    opened: list[tuple[socket.socket, int]] = []

    def open_socket() -> socket.socket:
        port = reserve_ports(1)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((LOOPBACK, port))
        opened.append((sock, port))
        return sock

    try:
        yield open_socket
    finally:
        for sock, port in opened:
            sock.close()
            release_ports(port, 1)


def _poll(condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


# ---------------------------------------------------------------------------------------------
# A few lines of raw SIP over UDP: the CTI's side, before the real media worker exists


@dataclass
class SipMessage:
    first_line: str
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: str = ""

    @classmethod
    def parse(cls, data: bytes) -> SipMessage:
        head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
        lines = head.split("\r\n")
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        return cls(lines[0], headers, body)

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), [""])[0]

    @property
    def method(self) -> str:
        return "" if self.first_line.startswith("SIP/2.0") else self.first_line.split()[0]

    @property
    def status(self) -> int:
        return int(self.first_line.split()[1]) if self.first_line.startswith("SIP/2.0") else 0

    @property
    def request_user(self) -> str:
        return _user(self.first_line.split()[1])

    @property
    def from_user(self) -> str:
        return _user(self.header("from"))


def _user(uri: str) -> str:
    match = re.search(r"sips?:([^@;>]+)@", uri)
    return match.group(1) if match else ""


class MiniSip:
    """The CTI's socket: receive what Kamailio sends to 127.0.0.1:<cti_port>, send simple requests."""

    def __init__(self, sock: socket.socket, proxy: tuple[str, int]) -> None:
        self.sock = sock
        self.proxy = proxy
        self.port = sock.getsockname()[1]
        self.received: list[SipMessage] = []

    def wait(self, match: Callable[[SipMessage], bool], timeout: float = 10.0) -> SipMessage:
        for message in self.received:
            if match(message):
                self.received.remove(message)
                return message
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                break
            message = SipMessage.parse(data)
            if match(message):
                return message
            self.received.append(message)
        seen = [m.first_line for m in self.received]
        raise AssertionError(f"no matching SIP message within {timeout} s; got {seen}")

    def invite(self, user: str, from_user: str, rtp_port: int) -> dict[str, str]:
        """Send an INVITE for sip:<user>@proxy (From <from_user>) with a PCMU offer; its dialog ids."""
        host, port = self.proxy
        ids = {
            "branch": "z9hG4bK" + secrets.token_hex(8),
            "call_id": secrets.token_hex(10) + "@cti",
            "from": f"<sip:{from_user}@{LOOPBACK}>;tag={secrets.token_hex(4)}",
            "ruri": f"sip:{user}@{host}:{port}",
        }
        sdp = (
            f"v=0\r\no=cti 1 1 IN IP4 {LOOPBACK}\r\ns=-\r\nc=IN IP4 {LOOPBACK}\r\nt=0 0\r\n"
            f"m=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"
        )
        self._send(
            f"INVITE {ids['ruri']} SIP/2.0",
            ids,
            "1 INVITE",
            f"To: <{ids['ruri']}>",
            f"Contact: <sip:cti@{LOOPBACK}:{self.port}>",
            "Content-Type: application/sdp",
            body=sdp,
        )
        return ids

    def ack_failure(self, ids: dict[str, str], response: SipMessage) -> None:
        """ACK a negative final response to our INVITE (same branch, the response's To)."""
        self._send(f"ACK {ids['ruri']} SIP/2.0", ids, "1 ACK", f"To: {response.header('to')}")

    def _send(self, first_line: str, ids: dict[str, str], cseq: str, *headers: str, body: str = "") -> None:
        message = "\r\n".join(
            [
                first_line,
                f"Via: SIP/2.0/UDP {LOOPBACK}:{self.port};branch={ids['branch']};rport",
                "Max-Forwards: 70",
                f"From: {ids['from']}",
                f"Call-ID: {ids['call_id']}",
                f"CSeq: {cseq}",
                *headers,
                f"Content-Length: {len(body.encode())}",
                "",
                body,
            ]
        )
        self.sock.sendto(message.encode(), self.proxy)


def _sdp_connection(sdp: str) -> tuple[str, int]:
    address = re.search(r"^c=IN IP4 (\S+)", sdp, re.M)
    port = re.search(r"^m=audio (\d+)", sdp, re.M)
    assert address and port, sdp
    return address.group(1), int(port.group(1))


# ---------------------------------------------------------------------------------------------
# Without processes


def test_bencode_round_trip_and_ng_wire_format() -> None:
    assert bencode.encode({"command": "ping"}) == b"d7:command4:pinge"
    assert bencode.decode(b"d6:result4:ponge") == {"result": "pong"}
    value = {"z": [1, -2, "sdp\r\n", {"k": b"\xff"}], "a": 0, "flags": ["trust-address"]}
    decoded = bencode.decode(bencode.encode(value))
    assert decoded == {"z": [1, -2, "sdp\r\n", {"k": "\udcff"}], "a": 0, "flags": ["trust-address"]}
    assert bencode.encode(decoded) == bencode.encode(value)  # undecodable bytes survive a round trip
    with pytest.raises(bencode.BencodeError):
        bencode.decode(b"d6:result4:pong")


def test_tone_files_read_back(tmp_path: Path) -> None:
    audio = read_wav(write_tone_wav(tmp_path / "t.wav", 440, seconds=1.0))
    assert audio.rate == 8000 and len(audio.samples) == 8000
    assert audio.rms() == pytest.approx(0.5 / 2**0.5, rel=0.01)
    assert audio.tone_hz() == pytest.approx(440, rel=0.01)
    # A dump still being written (header sizes 0) reads up to the end of the file.
    raw = bytearray((tmp_path / "t.wav").read_bytes())
    raw[4:8] = raw[40:44] = b"\0\0\0\0"
    (tmp_path / "open.wav").write_bytes(raw)
    assert len(read_wav(tmp_path / "open.wav").samples) == 8000


# ---------------------------------------------------------------------------------------------
# Real processes


@pytest.mark.sip
def test_kamailio_config_checks(tmp_path: Path) -> None:
    """The rendered config passes `kamailio -c`, also with the digest-auth hook switched on."""
    stack = SipStack(tmp_path, cti_port=25999)
    stack.sip_port, stack.ng_port, stack.cti_port = 25998, 25997, 25999
    cfg = tmp_path / "kamailio.cfg"
    cfg.write_text(stack.render_kamailio_cfg())
    for extra in ([], ["-A", "WITH_AUTH"]):
        check = subprocess.run(["kamailio", "-c", "-f", str(cfg), *extra], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stderr[-2000:]


@pytest.mark.sip
def test_customer_calls_agent_two_way_audio_through_rtpengine(make_stack: Callable[..., SipStack]) -> None:
    stack = make_stack()
    customer = stack.phone(CUSTOMER, tone_hz=CUSTOMER_HZ)
    agent = stack.phone("agent1", tone_hz=AGENT_HZ)
    customer.wait_registered()
    agent.wait_registered()
    assert [uri.split("@")[1] for uri in stack.registered_contacts("agent1")] == [f"{LOOPBACK}:{agent.sip_listen_port}"]
    assert stack.registered_contacts(CENTER_NUMBER) == []

    customer.dial("agent1")
    incoming = agent.wait_for("CALL_INCOMING")
    assert incoming.peer_user == CUSTOMER  # the ANI reaches the agent untouched
    customer.wait_for("CALL_RINGING")
    agent.answer()
    established = customer.wait_for("CALL_ESTABLISHED")
    agent.wait_for("CALL_ESTABLISHED")
    call_id = established.call_id
    assert call_id in stack.rtpengine_call_ids()

    # Both hear the other's tone while the call is up …
    assert agent.wait_for_audio(HEARD) >= HEARD
    assert customer.wait_for_audio(HEARD) >= HEARD

    # … and it went through rtpengine: both parties' streams counted packets on rtpengine's ports, and
    # every address the SDP carried (each side's, and rtpengine's own in the rewritten SDP) is loopback.
    query = stack.rtpengine_query(call_id)
    assert len(query["tags"]) == 2
    for tag in query["tags"].values():
        streams = [s for media in tag["medias"] for s in media["streams"] if "RTP" in s["flags"]]
        assert streams, tag
        for stream in streams:
            assert stream["local address"] == LOOPBACK
            assert stack.rtp_port_min <= stream["local port"] <= stack.rtp_port_max
            assert stream["advertised endpoint"]["address"] == LOOPBACK
            assert stream["endpoint"]["address"] == LOOPBACK
            assert stream["stats"]["packets"] > 0

    customer.hangup()
    assert customer.wait_for("CALL_CLOSED").call_id == call_id
    assert agent.wait_for("CALL_CLOSED").call_id == call_id
    assert _poll(lambda: call_id not in stack.rtpengine_call_ids()), "rtpengine kept the call after BYE"

    heard_by_agent, heard_by_customer = agent.received_audio(), customer.received_audio()
    assert heard_by_agent.rms() > HEARD and heard_by_customer.rms() > HEARD
    assert heard_by_agent.tone_hz() == pytest.approx(CUSTOMER_HZ, rel=0.03)
    assert heard_by_customer.tone_hz() == pytest.approx(AGENT_HZ, rel=0.03)


@pytest.mark.sip
def test_center_number_goes_to_the_cti_with_the_callers_number(
    make_stack: Callable[..., SipStack], udp_port: Callable[[], socket.socket]
) -> None:
    cti_socket = udp_port()
    stack = make_stack(cti_port=cti_socket.getsockname()[1])
    cti = MiniSip(cti_socket, stack.sip_address)
    customer = stack.phone(CUSTOMER)
    customer.wait_registered()

    customer.dial(CENTER_NUMBER)
    invite = cti.wait(lambda m: m.method == "INVITE")
    assert invite.request_user == CENTER_NUMBER
    assert invite.from_user == CUSTOMER
    # The SDP the CTI gets is rtpengine's: loopback, a port from rtpengine's range.
    address, port = _sdp_connection(invite.body)
    assert address == LOOPBACK
    assert stack.rtp_port_min <= port <= stack.rtp_port_max
    call_id = invite.header("call-id")
    assert call_id in stack.rtpengine_call_ids()

    # Nobody answers; the caller gives up.
    customer.hangup()
    closed = customer.wait_for("CALL_CLOSED")
    assert closed.call_id == call_id
    assert _poll(lambda: call_id not in stack.rtpengine_call_ids()), "rtpengine kept the cancelled call"


@pytest.mark.sip
def test_a_full_cti_worker_passes_the_call_to_the_next_one(
    make_stack: Callable[..., SipStack], udp_port: Callable[[], socket.socket]
) -> None:
    """The CTI is a pool of media workers (dispatcher set 1): round robin, a 503 from a full one sends the call
    to the next; requests from any of them are the CTI's (registered users only)."""
    workers = [udp_port(), udp_port()]
    stack = make_stack(cti_ports=[sock.getsockname()[1] for sock in workers])
    assert stack.cti_port == workers[0].getsockname()[1] and len(stack.cti_addresses) == 2
    ctis = [MiniSip(sock, stack.sip_address) for sock in workers]
    customer = stack.phone(CUSTOMER)
    customer.wait_registered()

    customer.dial(CENTER_NUMBER)
    first, invite = _first_invite(ctis)
    _respond(first, invite, 503, "Service Unavailable")  # full
    second = ctis[1 - ctis.index(first)]
    retried = second.wait(lambda m: m.method == "INVITE")
    assert retried.header("call-id") == invite.header("call-id") and retried.request_user == CENTER_NUMBER
    assert retried.body == invite.body  # the same rtpengine offer
    _respond(second, retried, 503, "Service Unavailable")  # every worker full: the caller is refused
    closed = customer.wait_for("CALL_CLOSED")
    assert closed.call_id == invite.header("call-id")
    assert _poll(lambda: closed.call_id not in stack.rtpengine_call_ids()), "rtpengine kept the refused call"

    # The second worker's own calls go to registered users only, like the first's.
    ids = second.invite("0399999999", CUSTOMER, udp_port().getsockname()[1])
    not_found = second.wait(lambda m: m.status >= 200 and m.header("call-id") == ids["call_id"])
    assert not_found.status == 404
    second.ack_failure(ids, not_found)


def _first_invite(ctis: list[MiniSip], timeout: float = 10.0) -> tuple[MiniSip, SipMessage]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for cti in ctis:
            try:
                return cti, cti.wait(lambda m: m.method == "INVITE", timeout=0.1)
            except AssertionError:
                continue
    raise AssertionError("no CTI worker got the INVITE")


def _respond(cti: MiniSip, request: SipMessage, code: int, reason: str) -> None:
    """A final response to a request Kamailio sent this CTI worker (its Vias, a To tag)."""
    lines = [f"SIP/2.0 {code} {reason}", *(f"Via: {via}" for via in request.headers["via"])]
    lines += [f"From: {request.header('from')}", f"To: {request.header('to')};tag={secrets.token_hex(4)}",
              f"Call-ID: {request.header('call-id')}", f"CSeq: {request.header('cseq')}", "Content-Length: 0",
              "", ""]  # fmt: skip
    cti.sock.sendto("\r\n".join(lines).encode(), cti.proxy)


@pytest.mark.sip
def test_cti_reaches_registered_users_only(
    make_stack: Callable[..., SipStack], udp_port: Callable[[], socket.socket]
) -> None:
    cti_socket, media_socket = udp_port(), udp_port()
    stack = make_stack(cti_port=cti_socket.getsockname()[1])
    cti = MiniSip(cti_socket, stack.sip_address)
    agent = stack.phone("agent1")
    agent.wait_registered()
    rtp_port = media_socket.getsockname()[1]

    # An unregistered user: 404 from Kamailio (not sent back to the CTI).
    ids = cti.invite("0399999999", CUSTOMER, rtp_port)
    not_found = cti.wait(lambda m: m.status >= 200)
    assert not_found.status == 404
    cti.ack_failure(ids, not_found)

    # A registered agent rings with the caller's number the CTI put in From.
    ids = cti.invite("agent1", CUSTOMER, rtp_port)
    incoming = agent.wait_for("CALL_INCOMING")
    assert incoming.peer_user == CUSTOMER
    assert ids["call_id"] in stack.rtpengine_call_ids()
    agent.hangup()  # the agent rejects the call
    rejected = cti.wait(lambda m: m.status >= 200)
    assert rejected.status >= 400
    cti.ack_failure(ids, rejected)
    assert _poll(lambda: ids["call_id"] not in stack.rtpengine_call_ids()), "rtpengine kept the failed call"


@pytest.mark.sip
def test_dtmf_travels_as_rfc4733_events(
    make_stack: Callable[..., SipStack], udp_port: Callable[[], socket.socket]
) -> None:
    dtmf_log = udp_port()
    stack = make_stack(dtmf_log_port=dtmf_log.getsockname()[1])
    customer = stack.phone(CUSTOMER)
    agent = stack.phone("agent1", auto_answer=True)
    customer.wait_registered()
    agent.wait_registered()
    customer.dial("agent1")
    call_id = customer.wait_for("CALL_ESTABLISHED").call_id
    agent.wait_for("CALL_ESTABLISHED")
    agent.wait_for_audio(HEARD)  # media flows before the first digit

    digits = "1590*#"
    customer.send_dtmf(digits)

    # The agent's phone decodes them as telephone-events, in order …
    heard = [agent.wait_for("CALL_DTMF_START").param for _ in digits]
    assert "".join(heard) == digits
    # … and rtpengine saw each as an RFC 4733 event on this call (its DTMF log: JSON per digit).
    events: list[dict[str, Any]] = []
    dtmf_log.settimeout(10)
    while len(events) < len(digits):
        events.append(json.loads(dtmf_log.recv(65535)))
    assert {event["callid"] for event in events} == {call_id}
    assert [event["event"] for event in events] == ["0123456789*#".index(d) for d in digits]  # RFC 4733 codes
    assert all(event["type"] == "DTMF" and event["source_ip"] == LOOPBACK for event in events)

    customer.hangup()
    customer.wait_for("CALL_CLOSED")
    agent.wait_for("CALL_CLOSED")


def test_the_calls_a_media_worker_takes_is_a_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``KAKEHASHI_SIP_CALLS_PER_WORKER=1`` leaves room on every call for a consultation and a listener."""
    from pydantic import ValidationError

    from kakehashi.kit.config import Settings
    from kakehashi.pipeline import sip_options

    pjsip = {"telephony_driver": "sip", "sip_engine": "pjsip"}
    assert sip_options(Settings(data_dir=tmp_path, **pjsip)).calls_per_worker == 2
    monkeypatch.setenv("KAKEHASHI_SIP_CALLS_PER_WORKER", "1")
    monkeypatch.setenv("KAKEHASHI_SIP_WORKERS", "8")
    options = sip_options(Settings(data_dir=tmp_path, **pjsip))
    assert (options.calls_per_worker, options.workers) == (1, 8)
    # The default engine, rtpengine's media plane: one signalling process, rtpengine's addresses from the settings.
    plane = sip_options(Settings(data_dir=tmp_path, telephony_driver="sip"))
    assert (plane.engine, plane.workers, plane.ng, plane.dtmf_port) == ("rtpengine", 1, "127.0.0.1:2223", 22230)
    assert plane.pcap_dir == tmp_path / "rtp-recordings"
    with pytest.raises(ValidationError, match="sip_calls_per_worker"):
        Settings(data_dir=tmp_path, sip_calls_per_worker=3)
