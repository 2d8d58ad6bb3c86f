"""aiosipua as the plane's SIP stack, with the three fixes it needs to sit behind Kamailio (ADR 0024).

aiosipua 0.7 (MIT, pure Python) parses, builds and retransmits what a B2BUA needs. Behind a record-routing proxy
three of its details break a dialog, so they are corrected here instead of patching the package:

- **An outgoing call's dialog ignores the answer's Record-Route and Contact**: its ACK and BYE went to the
  original request URI without a Route, and Kamailio dropped them (the agent's phone never saw the ACK).
  ``PlaneUac`` sets the remote target and the route set (RFC 3261 §12.1.2: Record-Route reversed) from every
  INVITE response that makes or confirms the dialog, before aiosipua acknowledges it.
- **An incoming call's route set is reversed** (a UAS keeps Record-Route in order, §12.1.1), **and its answers
  leave the INVITE's Record-Route out** (§12.1.1: a UAS copies it into every response that makes the dialog):
  the caller's BYE then carried no Route and Kamailio refused it (404). ``adopt_incoming`` fixes the route set
  and has ``PlaneTransport`` copy the Record-Route into the dialog's 18x and 2xx answers.
- **On Python 3.11 its UDP protocol asserts a transport class that 3.11's selector transport does not
  derive from**, logging a traceback at every start: ``PlaneTransport`` uses a protocol without the assert.

And one for scale: its transaction layer looks at every stored transaction (they linger 32 s) each time one is
created, so its cost per call grows with the call rate — at 50 calls a second, ~5,000 transactions scanned three
times per call, most of the plane's CPU. ``PeriodicPruning`` prunes at most once a second.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from aiosipua import IncomingCall, OutgoingCall, SipUAC, SipUAS, UdpSipTransport, parse_sdp
from aiosipua.dialog import DialogState
from aiosipua.message import SipRequest, SipResponse
from aiosipua.transaction import TransactionLayer
from aiosipua.transport import _UdpProtocol

#: Socket buffers: a burst of call set-ups (hundreds of messages at once) must not overflow loopback's default.
SOCKET_BUFFER = 4 << 20


class _Protocol(_UdpProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._owner._udp_transport = transport  # type: ignore[assignment]


@dataclass
class PlaneTransport(UdpSipTransport):
    """UDP on ``local_addr`` with large socket buffers; answers to an incoming INVITE carry its Record-Route."""

    record_routes: dict[str, list[str]] = field(default_factory=dict)  # Call-ID → the INVITE's Record-Route

    def send_reply(self, response: SipResponse) -> None:
        cseq = response.cseq
        routes = self.record_routes.get(response.call_id or "")
        answers_invite = cseq is not None and cseq.method.upper() == "INVITE" and 100 < response.status_code < 300
        if routes and answers_invite and not response.headers.get("record-route"):
            for route in routes:
                response.headers.append("Record-Route", route)
        super().send_reply(response)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        sock.bind(self.local_addr)
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        self._udp_transport = transport


class PeriodicPruning(TransactionLayer):
    """aiosipua's transactions, expired at most once a second instead of at every new transaction."""

    PRUNE_EVERY_S = 1.0

    def __init__(self) -> None:
        super().__init__()
        self._pruned_at = 0.0

    def _prune_expired(self) -> None:
        now = time.monotonic()
        if now - self._pruned_at >= self.PRUNE_EVERY_S:
            self._pruned_at = now
            super()._prune_expired()


class PlaneUas(SipUAS):
    """aiosipua's UAS without its mistake on a retransmitted INVITE (one with no To tag whose Call-ID it holds):
    it took one that came before its answer for a new call, and one that came after for a re-INVITE of an
    unknown dialog (481, and the caller gave up: no ACK, the call released, its BYE refused). Under load the
    proxy resends an INVITE whose 100 Trying is late; the transaction already has it, so it is dropped (our
    answer is retransmitted until the ACK)."""

    def _handle_invite(self, request: SipRequest, addr: tuple[str, int]) -> None:
        to = request.to_addr
        if (to is None or not to.tag) and (request.call_id or "") in self._calls:
            return
        super()._handle_invite(request, addr)


class PlaneUac(SipUAC):
    """aiosipua's UAC with the dialog fixes above, and re-INVITEs whose answer can be awaited (``reinvite``):
    aiosipua treats a re-INVITE's failure like the call's rejection (the dialog ended); here a refused re-INVITE
    leaves the dialog as it was (RFC 3261 §14.1)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.transactions = PeriodicPruning()
        self._reinvites: dict[str, asyncio.Future[str | None]] = {}

    def handle_response(self, response: SipResponse, addr: tuple[str, int]) -> None:
        cseq = response.cseq
        call = self._calls.get(response.call_id or "")
        if call is None or cseq is None or cseq.method.upper() != "INVITE":
            super().handle_response(response, addr)
            return
        waiting = self._reinvites.get(call.call_id) if call._answered.is_set() else None
        if waiting is not None and response.status_code >= 300:
            self._reinvites.pop(call.call_id, None)
            if not waiting.done():
                waiting.set_result(None)
            return
        to = response.to_addr
        if 101 <= response.status_code < 300 and to is not None and to.tag:
            _dialog_from_response(call.dialog, response, initial=not call._answered.is_set())
        super().handle_response(response, addr)
        if waiting is not None and 200 <= response.status_code < 300:
            self._reinvites.pop(call.call_id, None)
            if not waiting.done():
                waiting.set_result(response.text if response.body else "")

    async def reinvite(self, call: OutgoingCall, sdp: str, *, timeout_s: float = 8.0) -> str | None:
        """Offer ``sdp`` to the far end of an answered outgoing call; its answer SDP, or None (refused, no
        answer, or the dialog is not confirmed)."""
        if call.dialog.state != DialogState.CONFIRMED:
            return None
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._reinvites[call.call_id] = future
        self.send_reinvite(call.dialog, parse_sdp(sdp), call.remote_addr)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return None
        finally:
            self._reinvites.pop(call.call_id, None)


def next_version(sdp: str) -> str:
    """The SDP with its origin's version raised: a re-offer of an SDP the far end has seen must say it changed
    (RFC 3264 §8), or the phone keeps its old media."""
    lines = sdp.split("\r\n") if "\r\n" in sdp else sdp.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("o="):
            parts = line.split(" ")
            if len(parts) >= 6 and parts[2].isdigit():
                parts[2] = str(max(int(parts[2]) + 1, next(_versions)))
                lines[i] = " ".join(parts)
            break
    return ("\r\n" if "\r\n" in sdp else "\n").join(lines)


_versions = itertools.count(int(time.time()))


def _dialog_from_response(dialog: Any, response: SipResponse, *, initial: bool) -> None:
    """The remote target from the answer's Contact (a re-INVITE's answer refreshes it); the route set from the
    initial INVITE's answers only (a 2xx's for good: §12.1.2; an in-dialog answer carries no Record-Route)."""
    contacts = response.contact
    if contacts:
        from aiosipua.headers import stringify_uri

        dialog.remote_target = stringify_uri(contacts[0].uri)
    if initial and (not dialog.route_set or response.status_code >= 200):
        dialog.route_set = list(reversed(response.headers.get("record-route")))


def adopt_incoming(call: IncomingCall, transport: PlaneTransport) -> None:
    """An incoming dialog's route set is its INVITE's Record-Route in order (RFC 3261 §12.1.1), and its answers
    carry that Record-Route (``forget_incoming`` when the call is over)."""
    routes = list(call.invite.headers.get("record-route"))
    call.dialog.route_set = list(routes)
    if routes:
        transport.record_routes[call.call_id] = routes


def forget_incoming(call_id: str, transport: PlaneTransport) -> None:
    transport.record_routes.pop(call_id, None)
