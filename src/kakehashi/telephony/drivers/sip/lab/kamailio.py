"""Kamailio, the lab's SIP edge and registrar: its config template (``kamailio.cfg.tmpl``, rendered by
``SipStack``) and the probes that tell it is up (a SIP OPTIONS, a WebSocket handshake)."""

from __future__ import annotations

import base64
import secrets
import socket
import time

from kakehashi.telephony.drivers.sip.lab.processes import LOOPBACK

KAMAILIO_TEMPLATE = "kamailio.cfg.tmpl"


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
