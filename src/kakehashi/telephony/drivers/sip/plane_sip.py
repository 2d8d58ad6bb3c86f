"""aiosipua as the plane's SIP stack, with the three fixes it needs to sit behind Kamailio (ADR 0024).

aiosipua 0.7 (MIT, pure Python) parses, builds and retransmits what a B2BUA needs. Behind a record-routing proxy
three of its details break a dialog, so they are corrected here instead of patching the package:

- **An outgoing call's dialog ignores the answer's Record-Route and Contact**: its ACK and BYE went to the
  original request URI without a Route, and Kamailio dropped them (the agent's phone never saw the ACK).
  ``PlaneUac`` sets the remote target and the route set (RFC 3261 §12.1.2: Record-Route reversed) from every
  INVITE response that makes or confirms the dialog, before aiosipua acknowledges it.
- **An incoming call's route set is reversed** (a UAS keeps Record-Route in order, §12.1.1): ``fix_uas_route_set``.
- **On Python 3.11 its UDP protocol asserts a transport class that 3.11's selector transport does not
  derive from**, logging a traceback at every start: ``PlaneTransport`` uses a protocol without the assert.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from aiosipua import IncomingCall, SipUAC, UdpSipTransport
from aiosipua.message import SipResponse
from aiosipua.transport import _UdpProtocol

#: Socket buffers: a burst of call set-ups (hundreds of messages at once) must not overflow loopback's default.
SOCKET_BUFFER = 4 << 20


class _Protocol(_UdpProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._owner._udp_transport = transport  # type: ignore[assignment]


class PlaneTransport(UdpSipTransport):
    """UDP on ``local_addr`` with large socket buffers."""

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        sock.bind(self.local_addr)
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        self._udp_transport = transport


class PlaneUac(SipUAC):
    def handle_response(self, response: SipResponse, addr: tuple[str, int]) -> None:
        cseq = response.cseq
        call = self._calls.get(response.call_id or "")
        if call is not None and cseq is not None and cseq.method.upper() == "INVITE":
            to = response.to_addr
            if 101 <= response.status_code < 300 and to is not None and to.tag:
                _dialog_from_response(call.dialog, response)
        super().handle_response(response, addr)


def _dialog_from_response(dialog: Any, response: SipResponse) -> None:
    contacts = response.contact
    if contacts:
        from aiosipua.headers import stringify_uri

        dialog.remote_target = stringify_uri(contacts[0].uri)
    if not dialog.route_set or response.status_code >= 200:  # a 2xx's route set is the dialog's for good
        dialog.route_set = list(reversed(response.headers.get("record-route")))


def fix_uas_route_set(call: IncomingCall) -> None:
    """An incoming dialog's route set: its INVITE's Record-Route in order (RFC 3261 §12.1.1)."""
    call.dialog.route_set = list(call.invite.headers.get("record-route"))
