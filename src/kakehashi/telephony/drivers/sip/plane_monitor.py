"""Silent monitor on rtpengine's media plane (ADR 0024): a supervisor's phone hears the caller and the agent.

rtpengine 10.5 cannot mix: ``subscribe request`` on the customer call with both tags (the customer's and the CTI
side's) gives two streams, one m= line each, and most phones take one audio stream. So the plane mixes them
itself, for monitored calls only:

    customer call (kk-<ref>) ──subscribe──▶ two sockets ─────┐
                                                             ├─ Mixer (20 ms tick: μ-law + μ-law → μ-law)
    supervisor's phone ◀── rtpengine (kk-<ref>-m<n>) ◀───────┘   one socket, one RTP stream

The subscription follows the CTI side's tag, not a phone: a transfer (another agent re-answered on the same tag)
goes on being heard. A consultation moves the agent's phone to an rtpengine call of its own (``plane_consult``):
while it lasts the listener is subscribed to that call too (the agent and the colleague, two streams more; looked
at every 200 ms), as the PJSIP engine's listeners hear the consultation. The caller, parked meanwhile (``block
media``), is not heard then: rtpengine's block stops what subscribers get too.

The supervisor's leg is a second rtpengine call (the mixer's side offers, the phone answers), so the phone talks
to rtpengine's address like every other SIP party, never to the plane's sockets. The offer is ``sendrecv``: a
``sendonly`` one is a hold to phones (baresip then plays nothing); what the phone sends is blocked in rtpengine
instead (``block media`` on its side), so nobody hears the supervisor, not even the mixer. A monitored call costs
the plane 100 packets/s in and 50 out per listener (about 0.3-0.4 % of a core); an unmonitored one nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import secrets
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from aiosipua import OutgoingCall

from kakehashi.telephony.drivers.sip.ng import NgError
from kakehashi.telephony.drivers.sip.pcap_wav import DECODERS
from kakehashi.telephony.drivers.sip.plane_media import PLAIN, sdp_address

if TYPE_CHECKING:
    from kakehashi.telephony.drivers.sip.plane import Call, Plane

#: ``subscribe request`` takes an offer's flags but has no second answer to latch ports for.
SUBSCRIBE_FLAGS = {key: value for key, value in PLAIN.items() if key != "flags"}
FRAME = 160  # samples (bytes of PCMU) in 20 ms
PTIME_S = 0.02
KEEP = 3 * FRAME  # at most 60 ms waits per side; older audio is dropped
PRIME = 2 * FRAME  # a side that ran dry is heard again once 40 ms wait (a late packet is not a gap each time)
RESYNC_S = 0.2  # the loop was this late: start the clock again rather than send a burst
SILENCE = b"\xff" * FRAME  # μ-law zero
PCMU, PCMA = 0, 8
_serial = itertools.count(1)
log = logging.getLogger("kakehashi.plane")


# -- G.711 ------------------------------------------------------------------------------------------------------
ULAW_DECODE: np.ndarray = DECODERS[PCMU]
_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def ulaw_encode(samples: np.ndarray) -> np.ndarray:
    """16-bit linear samples to G.711 μ-law codes (uint8), exactly as Sun's reference ``linear2ulaw`` (and
    CPython's ``audioop.lin2ulaw``): 14 bits, bias 33, clipped at 8159."""
    pcm = np.asarray(samples, dtype=np.int32) >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    pcm = np.minimum(np.abs(pcm), 8159) + 0x21
    segment = np.searchsorted(_SEGMENT_ENDS, pcm)  # 0..8 (8: the loudest code)
    code = np.where(segment >= 8, 0x7F, (np.minimum(segment, 7) << 4) | ((pcm >> (segment + 1)) & 0x0F))
    return np.asarray(code ^ mask, dtype=np.uint8)


#: Every 16-bit sample's μ-law code (index: sample + 32768).
_ENCODE = ulaw_encode(np.arange(-32768, 32768, dtype=np.int32))
#: A-law code → μ-law code (``bytes.translate``): a side on PCMA is mixed like one on PCMU.
ALAW_TO_ULAW = bytes(_ENCODE[DECODERS[PCMA].astype(np.int32) + 32768])
#: Two μ-law codes → the μ-law code of their sum (clipped): one table look-up per sample mixes a frame.
MIX = _ENCODE[np.clip(ULAW_DECODE[:, None].astype(np.int32) + ULAW_DECODE[None, :], -32768, 32767) + 32768].ravel()


def mix(a: bytes, b: bytes) -> bytes:
    """Two μ-law frames of one length added (clipped), as μ-law."""
    index = (np.frombuffer(a, dtype=np.uint8).astype(np.intp) << 8) | np.frombuffer(b, dtype=np.uint8)
    return bytes(MIX[index].tobytes())


def rtp_payload(packet: bytes) -> tuple[int, bytes] | None:
    """An RTP packet's payload type and payload (CSRCs, header extension and padding skipped)."""
    if len(packet) < 12 or packet[0] >> 6 != 2:
        return None
    start = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        if len(packet) < start + 4:
            return None
        start += 4 + 4 * int.from_bytes(packet[start + 2 : start + 4], "big")
    end = len(packet) - (packet[-1] if packet[0] & 0x20 else 0)
    return (packet[1] & 0x7F, packet[start:end]) if start <= end else None


def mix_all(frames: list[bytes]) -> bytes:
    """Any number of μ-law frames of one length added (clipped), as μ-law."""
    if len(frames) == 1:
        return frames[0]
    if len(frames) == 2:
        return mix(*frames)
    codes = np.frombuffer(b"".join(frames), dtype=np.uint8).reshape(len(frames), -1)
    total = ULAW_DECODE[codes].sum(axis=0, dtype=np.int32)
    return bytes(_ENCODE[np.clip(total, -32768, 32767) + 32768].tobytes())


class UlawReceiver(asyncio.DatagramProtocol):
    """A plane socket rtpengine sends one subscription's stream to: each G.711 payload as μ-law to
    :meth:`ulaw` (A-law translated; telephone events, comfort noise and RTCP on a shared port ignored)."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.heard(data)

    @property
    def port(self) -> int:
        return int(self.transport.get_extra_info("sockname")[1]) if self.transport is not None else 0

    def heard(self, packet: bytes) -> None:
        found = rtp_payload(packet)
        if found is None:
            return
        payload_type, payload = found
        if payload_type == PCMA:
            payload = payload.translate(ALAW_TO_ULAW)
        elif payload_type != PCMU:
            return
        self.ulaw(payload)

    def ulaw(self, payload: bytes) -> None:
        raise NotImplementedError


# -- the mixer ----------------------------------------------------------------------------------------------------
class Stream(UlawReceiver):
    """One voice the listener hears (one m= line of a subscription): its socket and its audio waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = bytearray()
        self.primed = False

    def ulaw(self, payload: bytes) -> None:
        waiting = self.waiting
        waiting += payload
        if len(waiting) > KEEP:
            del waiting[: len(waiting) - KEEP]

    def take(self) -> bytes:
        """The next 20 ms of this voice, or nothing (it has not sent enough)."""
        waiting = self.waiting
        if not self.primed:
            if len(waiting) < PRIME:
                return b""
            self.primed = True
        if len(waiting) < FRAME:
            self.primed = False
            return b""
        frame = bytes(waiting[:FRAME])
        del waiting[:FRAME]
        return frame

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None


class Mixer:
    """RTP streams in (one socket each), their sum out as one PCMU stream every 20 ms (one socket)."""

    def __init__(self, host: str, *, every_200ms: Callable[[], None] | None = None) -> None:
        self.host = host
        self.streams: list[Stream] = []
        self.mouth: asyncio.DatagramTransport | None = None
        self.target: tuple[str, int] | None = None
        self.every_200ms = every_200ms
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._ts = secrets.randbits(32)
        self._marker = 0x80
        self.sent = 0

    async def open(self) -> None:
        # What the supervisor's phone sends comes back here and is dropped (rtpengine blocks it anyway).
        loop = asyncio.get_running_loop()
        self.mouth, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=(self.host, 0))

    async def listen(self, count: int) -> list[Stream]:
        """``count`` more voices to hear, each on a socket of its own."""
        loop = asyncio.get_running_loop()
        streams = []
        try:
            for _ in range(count):
                _, stream = await loop.create_datagram_endpoint(Stream, local_addr=(self.host, 0))
                streams.append(stream)
        except OSError:
            for stream in streams:
                stream.close()
            raise
        self.streams += streams
        return streams

    def forget(self, streams: list[Stream]) -> None:
        for stream in streams:
            stream.close()
        self.streams = [stream for stream in self.streams if stream not in streams]

    @property
    def mouth_port(self) -> int:
        return int(self.mouth.get_extra_info("sockname")[1]) if self.mouth is not None else 0

    def frame(self) -> bytes:
        """The next 20 ms the listener hears."""
        frames = [frame for stream in self.streams if (frame := stream.take())]
        return mix_all(frames) if frames else SILENCE

    def start(self, target: tuple[str, int]) -> None:
        self.target = target
        self._due = asyncio.get_running_loop().time()
        self._tick()

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        self._due += PTIME_S
        now = loop.time()
        if now - self._due > RESYNC_S:
            self._due = now + PTIME_S
        self._timer = loop.call_at(self._due, self._tick)
        if self.mouth is None or self.target is None:
            return
        header = struct.pack("!BBHII", 0x80, self._marker | PCMU, self._seq, self._ts, self._ssrc)
        self._marker = 0
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + FRAME) & 0xFFFFFFFF
        self.mouth.sendto(header + self.frame(), self.target)
        self.sent += 1
        if self.every_200ms is not None and self.sent % 10 == 0:
            self.every_200ms()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.forget(self.streams)
        if self.mouth is not None:
            self.mouth.close()
            self.mouth = None


def local_host(ng_address: tuple[str, int]) -> str:
    """The plane's address as rtpengine sees it (the one its ng requests leave from): where the mixer listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(ng_address)  # UDP: nothing is sent
        return str(probe.getsockname()[0])


def subscription_answer(offer: str, host: str, ports: list[int]) -> str:
    """A recvonly answer to a subscription's offer: each m= line to one of ``ports``, every offered format kept
    (rtpengine refuses an answer that drops one)."""
    lines = ["v=0", f"o=kakehashi {next(_serial)} 1 IN IP4 {host}", "s=-", f"c=IN IP4 {host}", "t=0 0"]
    sections = re.split(r"\r?\n(?=m=)", offer.strip())[1:]
    for port, section in zip(ports, sections, strict=False):
        first, *attributes = section.splitlines()
        lines.append(f"m=audio {port} {' '.join(first.split()[2:])}")
        lines += [line for line in attributes if line.startswith(("a=rtpmap:", "a=fmtp:"))]
        lines += ["a=recvonly", "a=ptime:20"]
    return "\r\n".join(lines) + "\r\n"


def mixer_offer(host: str, port: int) -> str:
    """What the mixer offers the supervisor's side of its rtpengine call: PCMU. ``sendrecv``: phones take
    ``sendonly`` as a hold and play nothing (the phone's audio is blocked in rtpengine instead)."""
    version = next(_serial)
    return (
        f"v=0\r\no=kakehashi {version} {version} IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    )


# -- listeners --------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class Listener:
    """One supervisor listening to one call."""

    name: str
    media_id: str = ""  # rtpengine's call between the mixer and the supervisor's phone
    tag: str = ""  # the listener's subscriptions' to-tag (one per rtpengine call heard)
    leg: OutgoingCall | None = None
    up: bool = False
    mixer: Mixer | None = None
    heard: dict[str, list[Stream]] = field(default_factory=dict)  # rtpengine call subscribed to → its streams
    consultation: str | None = None  # the consultation's rtpengine call it hears (the agent and the colleague)
    following: bool = False  # a change of consultation is being followed


MIXER_TAG, EAR_TAG = "mixer", "ear"


async def start(plane: Plane, call: Call, listener: str, caller_id: str) -> None:
    """Ring ``listener``'s phone; answered, it hears the caller and the agent (``monitor_answered``)."""
    if listener in call.listeners:
        return
    n = next(_serial)
    found = call.listeners[listener] = Listener(listener, media_id=f"{call.media.media_id}-m{n}", tag=f"monitor-{n}")
    found.mixer = mixer = Mixer(local_host(plane.ng.address), every_200ms=lambda: _check(plane, call, found))
    try:
        await mixer.open()
        reply = await plane.ng.request("offer", call_id=found.media_id, from_tag=MIXER_TAG,
                                       sdp=mixer_offer(mixer.host, mixer.mouth_port), **PLAIN)  # fmt: skip
    except (NgError, OSError) as exc:
        await stop(plane, call, listener, 503, reason=str(exc))
        return
    leg = found.leg = plane.invite(listener, caller_id, _text(reply["sdp"]))
    plane.listening[leg.call_id] = (call, listener)
    leg.on_answer = lambda answered: plane.spawn(_answered(plane, call, found, answered))
    leg.on_rejected = lambda _leg, code, _reason: plane.spawn(_refused(plane, call, found, code))


async def _answered(plane: Plane, call: Call, listener: Listener, leg: OutgoingCall) -> None:
    async with call.lock:
        if call.done or call.listeners.get(listener.name) is not listener or listener.mixer is None:
            plane.listening.pop(leg.call_id, None)
            plane.bye(leg)
            return
        media = call.media
        try:
            reply = await plane.ng.request("answer", call_id=listener.media_id, from_tag=MIXER_TAG, to_tag=EAR_TAG,
                                           sdp=plane.sdp_of(leg), **PLAIN)  # fmt: skip
            # Whatever the phone sends stops in rtpengine: nobody hears the supervisor, not even the mixer.
            await plane.ng.request("block media", call_id=listener.media_id, from_tag=EAR_TAG)
            await _subscribe(plane, listener, media.media_id, from_tags=[media.customer_tag, media.cti_tag])
        except (NgError, OSError) as exc:
            await stop(plane, call, listener.name, 503, reason=str(exc))
            return
        target = sdp_address(_text(reply["sdp"]))
        if target is None:
            await stop(plane, call, listener.name, 503, reason="rtpengine's answer has no address")
            return
        listener.mixer.start(target)
        listener.up = True
        plane.teardown_recipe(call, f"monitor:{listener.name}", leg)
        plane.emit("monitor_answered", ref=call.ref, listener=listener.name)
        _check(plane, call, listener)  # a consultation going on already


async def _subscribe(plane: Plane, listener: Listener, media_id: str, **selection: Any) -> None:
    """The mixer hears the parties of rtpengine's call ``media_id`` (``from_tags``, or ``flags=["all"]``)."""
    mixer = listener.mixer
    if mixer is None:
        return
    listener.heard[media_id] = []
    offer = await plane.ng.request("subscribe request", call_id=media_id, to_tag=listener.tag,
                                   **{**SUBSCRIBE_FLAGS, **selection})  # fmt: skip
    offered = _text(offer["sdp"])
    streams = listener.heard[media_id] = await mixer.listen(len(re.findall(r"^m=", offered, re.M)))
    answer = subscription_answer(offered, mixer.host, [stream.port for stream in streams])
    await plane.ng.request("subscribe answer", call_id=media_id, to_tag=listener.tag, sdp=answer)


async def _unsubscribe(plane: Plane, listener: Listener, media_id: str) -> None:
    streams = listener.heard.pop(media_id, None)
    if streams is None:
        return
    if listener.mixer is not None:
        listener.mixer.forget(streams)
    with contextlib.suppress(NgError):  # a consultation's call may be deleted already (that ended it)
        await plane.ng.send("unsubscribe", call_id=media_id, to_tag=listener.tag)


def _check(plane: Plane, call: Call, listener: Listener) -> None:
    """Every 200 ms: the listener hears a consultation while the agent's phone is on it, as the PJSIP engine's
    listeners do (rtpengine 10.5 moves the agent to a call of its own; ``plane_consult``)."""
    consultation = call.consultation
    wanted = consultation.media_id if consultation is not None and consultation.moved else None
    if wanted != listener.consultation and not listener.following and listener.up:
        listener.following = True
        plane.spawn(_follow(plane, call, listener, wanted))


async def _follow(plane: Plane, call: Call, listener: Listener, wanted: str | None) -> None:
    try:
        async with call.lock:
            if call.done or call.listeners.get(listener.name) is not listener or not listener.up:
                return
            consultation = call.consultation  # again, under the lock: a transfer may have ended it meanwhile
            wanted = consultation.media_id if consultation is not None and consultation.moved else None
            if wanted == listener.consultation:
                return
            if listener.consultation is not None:
                await _unsubscribe(plane, listener, listener.consultation)
            listener.consultation = wanted  # not asked again if rtpengine refuses
            if wanted is not None:
                try:
                    await _subscribe(plane, listener, wanted, flags=["all"])
                except (NgError, OSError) as exc:
                    log.warning("plane: %s cannot hear %s's consultation: %s", listener.name, call.ref, exc)
    finally:
        listener.following = False


async def _refused(plane: Plane, call: Call, listener: Listener, code: int) -> None:
    async with call.lock:
        if listener.leg is not None:
            plane.listening.pop(listener.leg.call_id, None)
        listener.leg = None  # nothing to hang up
        if call.listeners.get(listener.name) is listener:
            await stop(plane, call, listener.name, code)


async def stop(plane: Plane, call: Call, listener: str, code: int, *, reason: str = "") -> None:
    """Hang the listener up (``monitor_ended``)."""
    found = call.listeners.pop(listener, None)
    if found is None:
        return
    found.up = False
    if found.mixer is not None:
        found.mixer.close()
    if found.leg is not None:
        plane.listening.pop(found.leg.call_id, None)
        plane.cancel(found.leg)
        found.leg = None
    for media_id in list(found.heard):
        await _unsubscribe(plane, found, media_id)
    found.mixer = None
    with contextlib.suppress(NgError):
        await plane.ng.send("delete", call_id=found.media_id)
    fields = {"reason": reason} if reason else {}
    plane.emit("monitor_ended", ref=call.ref, listener=listener, code=code, **fields)


async def stop_all(plane: Plane, call: Call) -> None:
    """The call is over: every listener is hung up."""
    for name in list(call.listeners):
        await stop(plane, call, name, 0)


async def listener_left(plane: Plane, call: Call, listener: str) -> None:
    """The supervisor hung up."""
    async with call.lock:
        found = call.listeners.get(listener)
        if found is not None:
            found.leg = None  # its dialog is over: no BYE of ours
            await stop(plane, call, listener, 0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
