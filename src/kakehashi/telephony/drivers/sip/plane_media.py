"""One call's media in rtpengine, as the signalling B2BUA (``sip.plane``) drives it (ADR 0024).

rtpengine relays each call between the customer and whoever the CTI puts on the other side: nobody (a *sink*:
while the IVR plays or the caller waits in the queue), then an agent, another agent after a transfer, music on
hold. rtpengine holds one call (``media_id``) with two monologues: the customer's (``customer_tag``) and the CTI
side's (``cti_tag``). The CTI side's far end is changed by answering again with the new party's SDP, so the
customer's ports never change and the customer never sees a re-INVITE. Prompts and music are rtpengine's
``play media``, recording its pcap method (``sip.pcap_wav`` turns the file into a two-channel WAV after the call),
DTMF its event log.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field
from typing import Any

from kakehashi.telephony.drivers.sip.ng import NgClient, NgError

#: Plain RTP toward every SIP party the CTI talks to (the same as Kamailio's route[PLAIN_MEDIA]).
PLAIN = {
    "replace": ["origin", "session-connection"],
    "ICE": "remove",
    "transport-protocol": "RTP/AVP",
    "DTLS": "off",
    "SDES": ["off"],
    "rtcp-mux": ["demux"],
    # A second answer (or offer) for the same side keeps that side's local ports: the customer's address never
    # changes while the CTI side goes from nobody to an agent and back (without it rtpengine opens new ports).
    "flags": ["port latching"],
}
#: The CTI side while nobody is on it: an address that takes nothing back (the discard port of loopback).
#: rtpengine sends the customer's audio there and nothing comes back: no ``block media`` is needed (each is an ng
#: command, and a call's set-up is kept to offer, answer, record, answer again, delete); hold blocks (``park``).
SINK_PORT = 9
_session = itertools.count(1)


def sink_sdp(direction: str = "sendrecv") -> str:
    """An SDP for "nobody": G.711 μ-law and telephone events at the discard port of 127.0.0.1."""
    version = next(_session)
    return (
        f"v=0\r\no=kakehashi {version} {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {SINK_PORT} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        f"a=fmtp:101 0-16\r\na={direction}\r\n"
    )


def sdp_address(sdp: str) -> tuple[str, int] | None:
    """The first audio stream's address in an SDP (session-level c= unless the media has its own)."""
    host, port = None, None
    for line in sdp.splitlines():
        if line.startswith("c=IN IP4 "):
            host = line[9:].split("/")[0].strip()
        elif line.startswith("m=audio "):
            parts = line.split()
            port = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
            if port is not None and host is not None:
                break
    return (host, port) if host and port else None


_MIRROR = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive", "sendrecv": "sendrecv"}


def answer_direction(answer: str, offer: str) -> str:
    """``answer`` with the direction that answers ``offer``'s (a phone that holds offers sendonly: we answer
    recvonly, RFC 3264 §6.1)."""
    offered = next((line[2:].strip() for line in offer.splitlines() if line[2:].strip() in _MIRROR
                    and line.startswith("a=")), "sendrecv")  # fmt: skip
    wanted = _MIRROR[offered]
    lines = [line for line in answer.splitlines() if not (line.startswith("a=") and line[2:].strip() in _MIRROR)]
    return "\r\n".join([*lines, f"a={wanted}"]) + "\r\n"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(eq=False)
class MediaCall:
    """rtpengine's side of one customer call. Every method is one or two ng commands; none holds state rtpengine
    does not also hold, so a restarted worker loses nothing but the calls it had."""

    ng: NgClient
    media_id: str
    customer_tag: str
    cti_tag: str
    customer_sdp: str = ""  # the customer's last SDP (offer or answer)
    toward_cti: str = ""  # rtpengine's SDP for the CTI side: what an agent is offered
    toward_customer: str = ""  # rtpengine's SDP for the customer
    blocked: bool = False
    recording: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    # -- inbound: the customer offered ---------------------------------------------------------------------
    async def customer_offered(self, sdp: str) -> None:
        """The customer's INVITE: what the CTI side (sink or agent) will be offered."""
        self.customer_sdp = sdp
        reply = await self.ng.request("offer", call_id=self.media_id, from_tag=self.customer_tag, sdp=sdp, **PLAIN)
        self.toward_cti = _text(reply["sdp"])

    async def answer_with_sink(self) -> str:
        """The IVR answers: the CTI side is nobody (nothing sent to the customer but prompts). The customer's
        SDP for the 200 OK."""
        reply = await self.ng.request(
            "answer", call_id=self.media_id, from_tag=self.customer_tag, to_tag=self.cti_tag, sdp=sink_sdp(), **PLAIN
        )
        self.toward_customer = _text(reply["sdp"])
        return self.toward_customer

    # -- outbound: the CTI offered -------------------------------------------------------------------------
    async def offer_to_customer(self) -> str:
        """An outbound call: the SDP to offer the customer (the CTI side is the sink until someone is on it)."""
        reply = await self.ng.request("offer", call_id=self.media_id, from_tag=self.cti_tag, sdp=sink_sdp(), **PLAIN)
        self.toward_customer = _text(reply["sdp"])
        return self.toward_customer

    async def customer_answered(self, sdp: str) -> None:
        self.customer_sdp = sdp
        reply = await self.ng.request(
            "answer", call_id=self.media_id, from_tag=self.cti_tag, to_tag=self.customer_tag, sdp=sdp, **PLAIN
        )
        self.toward_cti = _text(reply["sdp"])

    # -- the CTI side --------------------------------------------------------------------------------------
    async def attach(self, party_sdp: str, *, inbound: bool) -> None:
        """Put a party (an agent's phone) on the CTI side: its audio to the customer and back. The customer's
        side is untouched (same ports, no SIP)."""
        if inbound:
            await self.ng.request(
                "answer", call_id=self.media_id, from_tag=self.customer_tag, to_tag=self.cti_tag, sdp=party_sdp,
                **PLAIN,
            )  # fmt: skip
        else:
            await self.ng.request(
                "offer", call_id=self.media_id, from_tag=self.cti_tag, to_tag=self.customer_tag, sdp=party_sdp,
                **PLAIN,
            )  # fmt: skip
            await self.ng.request(
                "answer", call_id=self.media_id, from_tag=self.cti_tag, to_tag=self.customer_tag,
                sdp=self.customer_sdp, **PLAIN,
            )  # fmt: skip
        await self.unpark()

    async def detach(self, *, inbound: bool) -> None:
        """Nobody on the CTI side any more (the agent left: park, transfer, hang-up)."""
        await self.attach_sink(inbound=inbound)

    async def attach_sink(self, *, inbound: bool) -> None:
        """Nobody on the CTI side: the customer's audio goes nowhere (and stops reaching a phone that was there)."""
        if inbound:
            await self.ng.request(
                "answer", call_id=self.media_id, from_tag=self.customer_tag, to_tag=self.cti_tag, sdp=sink_sdp(),
                **PLAIN,
            )  # fmt: skip
        else:
            await self.ng.request(
                "offer", call_id=self.media_id, from_tag=self.cti_tag, to_tag=self.customer_tag, sdp=sink_sdp(),
                **PLAIN,
            )  # fmt: skip
            await self.ng.request(
                "answer", call_id=self.media_id, from_tag=self.cti_tag, to_tag=self.customer_tag,
                sdp=self.customer_sdp, **PLAIN,
            )  # fmt: skip

    async def hear_customer(self) -> None:
        """While nobody is on the CTI side (a consultation): let the customer's audio through again, so listeners
        (silent monitor) and the recording keep it; it goes to the sink, no phone hears it."""
        await self.ng.request("unblock media", call_id=self.media_id, from_tag=self.customer_tag)

    async def park(self) -> None:
        """Stop relaying between the two sides (each side's own packets are blocked): the customer hears only
        what is played to them (``play media`` to a participant is not their peer's media, so not blocked)."""
        if not self.blocked:
            await self.ng.request("block media", call_id=self.media_id, from_tag=self.customer_tag)
            await self.ng.request("block media", call_id=self.media_id, from_tag=self.cti_tag)
            self.blocked = True

    async def unpark(self) -> None:
        if self.blocked:
            await self.ng.request("unblock media", call_id=self.media_id, from_tag=self.customer_tag)
            await self.ng.request("unblock media", call_id=self.media_id, from_tag=self.cti_tag)
            self.blocked = False

    # -- prompts, music, recording -------------------------------------------------------------------------
    async def play(self, path: str, *, loop: bool) -> float:
        """Play a WAV to the customer (``play media`` plays *to* the participant its tag names); how long it lasts
        (seconds; a looped file: one round)."""
        params: dict[str, Any] = {"file": path}
        if loop:
            params["repeat-times"] = 1_000_000
        reply = await self.ng.request("play media", call_id=self.media_id, from_tag=self.customer_tag, **params)
        return float(reply.get("duration", 0)) / 1000.0

    async def stop_play(self) -> None:
        await self.ng.send("stop media", call_id=self.media_id, from_tag=self.customer_tag)

    async def record(self, on: bool) -> None:
        if on and not self.recording:
            await self.ng.request("start recording", call_id=self.media_id)
        elif not on and self.recording:
            await self.ng.request("stop recording", call_id=self.media_id)
        self.recording = on

    def customer_address(self) -> tuple[str, int] | None:
        """The customer's RTP address from their SDP (the recording's left channel)."""
        return sdp_address(self.customer_sdp)

    async def delete(self) -> None:
        """The call is over: rtpengine frees its ports and closes the recording."""
        with contextlib.suppress(NgError):  # rtpengine's own timeout frees it
            await self.ng.send("delete", call_id=self.media_id)
