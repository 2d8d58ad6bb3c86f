"""Silent monitor on rtpengine's media plane (ADR 0024): a supervisor's phone hears the caller and the agent.

Not built yet: a listener ends at once with code 501 (the PJSIP engine has it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiosipua import OutgoingCall

if TYPE_CHECKING:
    from kakehashi.telephony.drivers.sip.plane import Call, Plane

NOT_HERE = 501


@dataclass(eq=False)
class Listener:
    """One supervisor listening to one call."""

    name: str
    leg: OutgoingCall | None = None
    up: bool = False


async def start(plane: Plane, call: Call, listener: str, caller_id: str) -> None:
    """Ring ``listener``'s phone; answered, it hears the caller and the agent (``monitor_answered``)."""
    plane.emit("monitor_ended", ref=call.ref, listener=listener, code=NOT_HERE, reason="not on this engine yet")


async def stop(plane: Plane, call: Call, listener: str, code: int) -> None:
    """Hang the listener up (``monitor_ended``)."""
    found = call.listeners.pop(listener, None)
    if found is not None:
        plane.emit("monitor_ended", ref=call.ref, listener=listener, code=code)


async def stop_all(plane: Plane, call: Call) -> None:
    """The call is over: every listener is hung up."""
    for name in list(call.listeners):
        await stop(plane, call, name, 0)


async def listener_left(plane: Plane, call: Call, listener: str) -> None:
    """The supervisor hung up."""
    async with call.lock:
        await stop(plane, call, listener, 0)
