"""The plane's corrections to aiosipua (``sip.plane_sip``), on messages built here and a UDP socket of loopback."""

from __future__ import annotations

import asyncio

from aiosipua import IncomingCall, SipRequest
from aiosipua.message import SipMessage

from kakehashi.telephony.drivers.sip.plane_sip import PlaneTransport, PlaneUas, adopt_incoming, next_version

INVITE = (
    "INVITE sip:0120999999@127.0.0.1:5070 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-kam-1;rport\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-caller-1\r\n"
    "Record-Route: <sip:127.0.0.1:5060;lr>\r\n"
    "From: <sip:0312345678@127.0.0.1:40000>;tag=caller\r\n"
    "To: <sip:0120999999@127.0.0.1:5060>\r\n"
    "Call-ID: call-1@127.0.0.1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:0312345678@127.0.0.1:40000>\r\n"
    "Max-Forwards: 69\r\n"
    "Content-Length: 0\r\n\r\n"
)


def _invite() -> SipRequest:
    message = SipMessage.parse(INVITE.encode())
    assert isinstance(message, SipRequest)
    return message


class _Uas:
    """A ``PlaneUas`` on a transport that keeps what it sends; the calls it reports."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.transport = PlaneTransport(local_addr=("127.0.0.1", 0))
        self.transport.send = lambda message, addr: self.sent.append(bytes(message))  # type: ignore[method-assign]
        self.uas = PlaneUas(self.transport)
        self.calls: list[IncomingCall] = []
        self.uas.on_invite = self.calls.append

    def invite(self) -> None:
        self.uas._handle_invite(_invite(), ("127.0.0.1", 5060))


def test_a_retransmitted_invite_is_neither_a_new_call_nor_a_refused_reinvite() -> None:
    async def scenario() -> tuple[list[IncomingCall], list[bytes]]:
        uas = _Uas()
        uas.invite()
        uas.calls[0].accept()
        uas.invite()  # the proxy's retransmission
        return uas.calls, uas.sent

    calls, sent = asyncio.run(scenario())
    assert len(calls) == 1, "one call"
    assert not any(b" 481 " in message.split(b"\r\n", 1)[0] for message in sent), "no 481 for the retransmission"


def test_an_incoming_dialog_keeps_the_record_route_and_its_answers_carry_it() -> None:
    async def scenario() -> list[bytes]:
        uas = _Uas()
        uas.invite()
        call = uas.calls[0]
        adopt_incoming(call, uas.transport)
        assert call.dialog.route_set == ["<sip:127.0.0.1:5060;lr>"]
        call.ringing()
        call.accept()
        call._stop_retransmissions()
        return uas.sent

    answers = [m for m in asyncio.run(scenario()) if m.startswith((b"SIP/2.0 180", b"SIP/2.0 200"))]
    assert len(answers) == 2 and all(b"Record-Route: <sip:127.0.0.1:5060;lr>" in m for m in answers), answers


def test_a_re_offer_of_a_known_sdp_says_it_changed() -> None:
    sdp = "v=0\r\no=- 5 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    again = next_version(sdp)
    version = int(again.split("\r\n")[1].split()[2])
    assert version > 7 and again.replace(str(version), "7", 1) == sdp
    assert int(next_version(again).split("\r\n")[1].split()[2]) > version
