"""Attended transfer on rtpengine's media plane: the agent consults a colleague while the caller holds (ADR 0024).

rtpengine 10.5 cannot connect parties of two calls (``connect`` came in mr13.2), so the consultation is a call of
its own in rtpengine (``<media_id>-c<n>``, the agent's side and the colleague's) and the agent's phone is moved
to it with a re-INVITE; the caller's side of the customer call stays as it was (parked, music). Completed: the
colleague's phone is re-INVITEd onto the customer call's CTI side and rtpengine is answered with its SDP; the
first agent is hung up. Ended otherwise: the first agent's phone goes back the same way. Phones are re-INVITEd,
never the customer.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiosipua import OutgoingCall

from kakehashi.telephony.drivers.sip.ng import NgError
from kakehashi.telephony.drivers.sip.outcomes import FAILURE_NAMES
from kakehashi.telephony.drivers.sip.plane_media import PLAIN
from kakehashi.telephony.drivers.sip.plane_sip import next_version

if TYPE_CHECKING:
    from kakehashi.telephony.drivers.sip.plane import Call, Plane

_serial = itertools.count(1)


@dataclass(eq=False)
class Consultation:
    agent: str  # the colleague
    media_id: str  # rtpengine's call for agent ↔ colleague
    leg: OutgoingCall | None = None
    up: bool = False  # the colleague answered and the first agent's phone was moved
    moved: bool = False  # the first agent's phone is on the consultation's rtpengine call


async def consult(plane: Plane, call: Call, agent: str, caller_id: str, music: str | None) -> None:
    """The caller holds (``music``), ``agent`` is rung; answered, the call's agent talks to them."""
    emit = plane.emit
    if call.consultation is not None:
        emit("error", ref=call.ref, message=f"consult: {call.consultation.agent} is being consulted already")
        return
    await plane.hold(call, True, music)
    consultation = call.consultation = Consultation(agent, f"{call.media.media_id}-c{next(_serial)}")
    if call.agent_leg is None or not call.agent_sdp:
        await end(plane, call, "failed", 0, reason="no agent on the call")
        return
    try:
        reply = await plane.ng.request("offer", call_id=consultation.media_id, from_tag="agent", sdp=call.agent_sdp,
                                       **PLAIN)  # fmt: skip
    except NgError as exc:
        await end(plane, call, "failed", 503, reason=str(exc))
        return
    leg = plane.invite(
        agent, caller_id, str(reply["sdp"].decode() if isinstance(reply["sdp"], bytes) else reply["sdp"])
    )
    consultation.leg = leg
    plane.consulting[leg.call_id] = call
    leg.on_answer = lambda answered: plane.spawn(_answered(plane, call, consultation, answered))
    leg.on_rejected = lambda _leg, code, _reason: plane.spawn(_refused(plane, call, consultation, code))


async def _answered(plane: Plane, call: Call, consultation: Consultation, leg: OutgoingCall) -> None:
    async with call.lock:
        if call.consultation is not consultation or call.done or call.agent_leg is None:
            plane.bye(leg)
            return
        try:
            reply = await plane.ng.request("answer", call_id=consultation.media_id, from_tag="agent",
                                           to_tag="colleague", sdp=plane.sdp_of(leg), **PLAIN)  # fmt: skip
        except NgError as exc:
            await end(plane, call, "failed", 503, reason=str(exc))
            return
        for_agent = reply["sdp"].decode() if isinstance(reply["sdp"], bytes) else str(reply["sdp"])
        if await plane.uac.reinvite(call.agent_leg, for_agent) is None:
            await end(plane, call, "failed", 0, reason="the agent's phone refused the re-INVITE")
            return
        consultation.up = consultation.moved = True
        # The agent's phone has left the customer's call: nobody on its CTI side until the consultation ends, and
        # the caller (hearing music) is heard again by listeners and the recording.
        await call.media.attach_sink(inbound=call.inbound)
        await call.media.hear_customer()
        plane.emit("consult_answered", ref=call.ref, agent=consultation.agent)


async def _refused(plane: Plane, call: Call, consultation: Consultation, code: int) -> None:
    async with call.lock:
        if call.consultation is consultation:
            consultation.leg = None
            await end(plane, call, FAILURE_NAMES.get(code, "failed"), code)


async def complete(plane: Plane, call: Call) -> None:
    """The caller joins the colleague, whose phone becomes the call's agent; the first agent is hung up."""
    consultation = call.consultation
    if consultation is None or not consultation.up or consultation.leg is None:
        plane.emit("error", ref=call.ref, message="complete_consult: no colleague on the line")
        return
    leg = consultation.leg
    answer = await plane.uac.reinvite(leg, next_version(call.media.toward_cti))
    if answer is None:
        plane.emit("error", ref=call.ref, message="complete_consult: the colleague's phone refused the re-INVITE")
        return
    first = call.agent_leg
    call.consultation = None
    plane.consulting.pop(leg.call_id, None)
    if first is not None:
        plane.forget_leg(first)
        plane.bye(first)
    call.agent, call.agent_leg, call.agent_sdp = consultation.agent, leg, answer
    plane.by_sip[leg.call_id] = (call, consultation.agent)
    plane.teardown_recipe(call, consultation.agent, leg)
    await call.media.attach(answer, inbound=call.inbound)
    await plane.ng.send("delete", call_id=consultation.media_id)
    plane.emit("consult_completed", ref=call.ref, agent=consultation.agent)
    await plane.hold(call, False, None)


async def end(plane: Plane, call: Call, cause: str, code: int, *, reason: str = "", caller_gone: bool = False) -> None:
    """The consultation ends (cancelled, refused, the colleague hung up, the caller left): its leg is hung up and,
    unless the caller has gone, the first agent's phone is moved back and the caller is back with them."""
    consultation = call.consultation
    if consultation is None:
        return
    caller_gone = caller_gone or call.done
    call.consultation = None
    if consultation.leg is not None:
        plane.consulting.pop(consultation.leg.call_id, None)
        plane.cancel(consultation.leg)
    if plane.media_up:
        with contextlib.suppress(NgError):
            await plane.ng.send("delete", call_id=consultation.media_id)
    if consultation.moved and not caller_gone and call.agent_leg is not None:
        answer = await plane.uac.reinvite(call.agent_leg, next_version(call.media.toward_cti))
        if answer:
            call.agent_sdp = answer
            with contextlib.suppress(NgError):  # the consultation ends whatever rtpengine says
                await call.media.attach(answer, inbound=call.inbound)
    fields = {"reason": reason} if reason else {}
    plane.emit("consult_ended", ref=call.ref, agent=consultation.agent, cause=cause, code=code,
               caller_gone=caller_gone, **fields)  # fmt: skip
    if not caller_gone:
        await plane.hold(call, False, None)


async def colleague_left(plane: Plane, call: Call) -> None:
    """The colleague hung up."""
    async with call.lock:
        if call.consultation is not None:
            call.consultation.leg = None
            await end(plane, call, "normal", 0)
