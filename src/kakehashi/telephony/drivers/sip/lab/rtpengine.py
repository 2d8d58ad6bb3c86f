"""rtpengine, the lab's media relay: its control protocol (ng over UDP, bencoded)."""

from __future__ import annotations

import secrets
import socket
import time
from typing import Any

from kakehashi.telephony.drivers.sip import bencode
from kakehashi.telephony.drivers.sip.lab.processes import LOOPBACK, LabError

#: rtpengine uses 4 ports per call (RTP + RTCP, each side): 1600 ports = 400 concurrent calls.
DEFAULT_RTP_PORT_COUNT = 1600


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
