"""Answering-machine detection on rtpengine's media plane (issue 19): a person or a 留守番電話 answered?

An outbound call placed with ``amd`` (the driver's ``originate``: ``telephony.amd.AmdSettings``' fields) is not
reported answered when the customer's phone sends its 200 OK: the plane listens to what the customer says first
and reports the answer with the detector's verdict (``answered`` with ``amd`` human, machine or notsure).

    customer ──RTP──▶ rtpengine (kk-<ref>) ──▶ the CTI side (the sink: nobody yet)
                                   └──subscribe (the customer's tag only)──▶ Ear (a plane UDP socket)
                                                                              └─ μ-law → AmdDetector

The same approach as the silent monitor's (``plane_monitor``): ``subscribe request`` on the customer call for the
customer's side alone, a recvonly answer pointing at one socket of the plane, RTP payloads (PCMU; PCMA translated)
fed to :class:`~kakehashi.telephony.amd.AmdDetector` as they come. Once it decided the subscription is removed
(``unsubscribe``) and the socket closed. A wall-clock guard decides ``notsure`` when the audio does not come (a
phone that sends nothing, a subscription rtpengine refused): ``total_analysis_ms`` after the answer plus
``GUARD_GRACE_S``. Only calls placed with ``amd`` are analysed, each for at most ``total_analysis_ms`` (5 s by
default): 50 packets a second in, nothing out, for those seconds (one μ-law decode and one frame of the state
machine per packet, tens of microseconds); an unanalysed call costs nothing.

Comfort noise (RFC 3389) is not counted: phones on the PSTN side of a trunk send G.711 all along. A customer who
hangs up during the analysis ends the call without an ``answered`` (the controller sees a line that ended).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from kakehashi.telephony.amd import AmdDetector, AmdSettings, Verdict
from kakehashi.telephony.drivers.sip.ng import NgError
from kakehashi.telephony.drivers.sip.plane_monitor import (
    SUBSCRIBE_FLAGS,
    UlawReceiver,
    local_host,
    subscription_answer,
)

if TYPE_CHECKING:
    from kakehashi.telephony.drivers.sip.plane import Call, Plane

log = logging.getLogger("kakehashi.plane")
#: The wall-clock guard waits this long beyond ``total_analysis_ms`` for audio that is late or stopped.
GUARD_GRACE_S = 0.5
_FIELDS = frozenset(f.name for f in fields(AmdSettings))
_serial = itertools.count(1)


def settings_of(raw: Mapping[str, Any]) -> AmdSettings:
    """The detector's settings from an ``originate`` command's ``amd`` (``{}``: app_amd's defaults). Unknown
    fields are refused, like values out of range (``ValueError``)."""
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise ValueError(f"unknown AMD setting(s): {', '.join(unknown)}")
    return AmdSettings(**{name: int(value) for name, value in raw.items()})


class Ear(UlawReceiver):
    """The customer's RTP (one subscription's stream) into an :class:`AmdDetector`; ``decided`` is called once,
    with the verdict, and later packets are ignored."""

    def __init__(self, detector: AmdDetector, decided: Callable[[Verdict], None]) -> None:
        super().__init__()
        self.detector = detector
        self.decided = decided
        self.packets = 0

    def ulaw(self, payload: bytes) -> None:
        if self.detector.verdict is not None:
            return
        self.packets += 1
        verdict = self.detector.feed_ulaw(payload)
        if verdict is not None:
            self.decided(verdict)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None


@dataclass(eq=False)
class Detection:
    """One call's analysis: its detector, the socket it hears on, its subscription's tag, the guard."""

    detector: AmdDetector
    tag: str
    ear: Ear | None = None
    subscribed: str = ""  # rtpengine's call subscribed to (unsubscribed when decided)
    guard: asyncio.TimerHandle | None = None


async def start(plane: Plane, call: Call, settings: AmdSettings) -> None:
    """The customer answered a call placed with ``amd``: listen to them until the detector decides (under the
    call's lock; the verdict is reported by :func:`_decided`)."""
    detection = call.detection = Detection(AmdDetector(settings), tag=f"amd-{next(_serial)}")
    loop = asyncio.get_running_loop()

    def decide(verdict: Verdict | None) -> None:
        plane.spawn(_decided(plane, call, detection, verdict))

    detection.guard = loop.call_later(settings.total_analysis_ms / 1000 + GUARD_GRACE_S, lambda: decide(None))
    media = call.media
    try:
        host = local_host(plane.ng.address)
        _, ear = await loop.create_datagram_endpoint(lambda: Ear(detection.detector, decide), local_addr=(host, 0))
        detection.ear = ear
        offer = await plane.ng.request("subscribe request", call_id=media.media_id, to_tag=detection.tag,
                                       from_tags=[media.customer_tag], **SUBSCRIBE_FLAGS)  # fmt: skip
        detection.subscribed = media.media_id
        offered = _text(offer["sdp"])
        streams = len(re.findall(r"^m=", offered, re.M))
        if streams != 1:
            raise NgError(f"the customer's subscription has {streams} streams, not one")
        answer = subscription_answer(offered, host, [ear.port])
        await plane.ng.request("subscribe answer", call_id=media.media_id, to_tag=detection.tag, sdp=answer)
    except (NgError, OSError) as exc:
        log.warning("plane: no answering-machine detection on %s: %s", call.ref, exc)
        decide(Verdict("notsure", "NOAUDIODATA", 0, f"NOAUDIODATA-{exc}"))


async def _decided(plane: Plane, call: Call, detection: Detection, verdict: Verdict | None) -> None:
    """The detector decided (or the guard ran out: ``notsure``): stop listening, report the answer with it."""
    async with call.lock:
        if call.detection is not detection or call.done:
            return
        call.detection = None
        if verdict is None:  # the guard: the audio stopped or never came
            heard = detection.detector.elapsed_ms
            verdict = Verdict("notsure", "NOAUDIODATA", heard, f"NOAUDIODATA-{heard}")
        await stop(plane, detection, unsubscribe=True)
        await plane.report_answer(call, amd=verdict.result, amd_cause=verdict.cause, amd_ms=verdict.decided_ms)


async def hung_up(plane: Plane, call: Call) -> None:
    """The customer hung up while the detector listened (under the call's lock, the call ending): the answer is
    still reported — ``notsure``, cause ``HANGUP`` — so that the dialer counts a person who picked up (and, with
    nobody free in time, an abandoned one) rather than a line that failed."""
    detection, call.detection = call.detection, None
    if detection is None:
        return
    await stop(plane, detection, unsubscribe=False)  # the call's delete drops the subscription
    heard = detection.detector.elapsed_ms
    await plane.report_answer(call, amd="notsure", amd_cause="HANGUP", amd_ms=heard)


async def stop(plane: Plane, detection: Detection, *, unsubscribe: bool) -> None:
    """Stop listening: the guard, the socket, and (unless the call is being deleted anyway) the subscription."""
    if detection.guard is not None:
        detection.guard.cancel()
        detection.guard = None
    if detection.ear is not None:
        detection.ear.close()
        detection.ear = None
    if unsubscribe and detection.subscribed and plane.media_up:
        media_id, detection.subscribed = detection.subscribed, ""
        with contextlib.suppress(NgError):  # rtpengine drops it with the call at the latest
            await plane.ng.send("unsubscribe", call_id=media_id, to_tag=detection.tag)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
