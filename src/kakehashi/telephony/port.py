"""The adapter boundary between the CTI and a phone system.

Drivers (``sim`` now, ``sip`` later) turn what the phone system does into the events below and carry
out the commands of :class:`TelephonyDriver`. Nothing else in Kakehashi talks to a phone system, so a
driver can be swapped without changing any caller. Events carry the driver's own call reference
(``call_ref``), never our database ids.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class EndCause(StrEnum):
    """Why a call ended, as the phone system saw it."""

    NORMAL = "normal"  # someone hung up after talking
    CALLER_ABANDONED = "caller_abandoned"  # the caller hung up before an agent answered
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    ANSWERING_MACHINE = "answering_machine"
    INVALID_NUMBER = "invalid_number"
    FAILED = "failed"
    TRANSFERRED = "transferred"  # this leg ended because the call went elsewhere (a transfer out of the center)
    SYSTEM_RESTART = "system_restart"  # the CTI restarted and the driver no longer had the call


class RecordingState(StrEnum):
    STARTED = "started"
    PAUSED = "paused"  # e.g. while a card number is read out
    RESUMED = "resumed"
    STOPPED = "stopped"


class ConsultState(StrEnum):
    """The consultation leg of an attended transfer (the first agent talks to the target, the caller holds)."""

    RINGING = "ringing"
    CONNECTED = "connected"
    ENDED = "ended"  # the target hung up, refused or did not answer, or the first agent cancelled


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverEvent:
    call_ref: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Offered(DriverEvent):
    """A new call: inbound (someone dialled one of our numbers) or outbound (we originated it)."""

    direction: Direction
    ani: str  # caller's number as signalled (any form; normalized by the calls domain)
    dnis: str  # the number dialled
    tenant_id: int  # whose number it is; the SIP driver will map DNIS → tenant from configuration


@dataclass(frozen=True, slots=True, kw_only=True)
class Answered(DriverEvent):
    """The system (IVR) or the remote party (outbound) picked up. An outbound call placed with ``amd`` is
    reported once the answering-machine detector decided: ``amd`` "human", "machine" or "notsure"."""

    by: str  # "system" | "remote"
    amd: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfReceived(DriverEvent):
    digits: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SensitiveDtmfReceived(DriverEvent):
    """Keys of a sensitive collect (a card number, a PIN): only the IVR may read them. Not a
    :class:`DtmfReceived` on purpose, so the calls domain neither stores nor publishes them; left out of
    ``repr`` so a logged event does not show them."""

    digits: str = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRinging(DriverEvent):
    agent: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Bridged(DriverEvent):
    """The agent answered: caller and agent talk."""

    agent: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldChanged(DriverEvent):
    on_hold: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingChanged(DriverEvent):
    state: RecordingState
    recording_ref: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Transferred(DriverEvent):
    """The call was handed to ``target`` (an agent, or an outside number: then the call leaves the center).
    To an agent, :class:`AgentRinging` and :class:`Bridged` follow (attended: :class:`Bridged` at once)."""

    target: str
    attended: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Consult(DriverEvent):
    """The consultation leg of an attended transfer changed (``cause`` when it ended)."""

    target: str
    state: ConsultState
    cause: EndCause | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorChanged(DriverEvent):
    """A supervisor's phone (``listener``) started or stopped listening to the call (:class:`Monitoring`). Off
    also when it could not be reached, and when the call ends."""

    listener: str
    on: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Ended(DriverEvent):
    cause: EndCause


EventHandler = Callable[[DriverEvent], None]


class TelephonyDriver(Protocol):
    """Commands the CTI gives a phone system. Results arrive later as events, never as return values
    (except the reference of an originated call).

    ``collect_digits``: the keys arrive as :class:`DtmfReceived`, or as :class:`SensitiveDtmfReceived` when
    ``sensitive`` (the CTI pauses the recording around such a collect with ``record``)."""

    name: str

    def subscribe(self, handler: EventHandler) -> None: ...
    def answer(self, call_ref: str) -> None: ...
    def play(self, call_ref: str, prompt: str) -> None: ...
    def collect_digits(self, call_ref: str, *, max_digits: int, timeout_s: float, sensitive: bool = False) -> None: ...
    def route_to_agent(self, call_ref: str, agent: str) -> None: ...
    def park(self, call_ref: str, *, music: str | None = None) -> None: ...
    def originate(self, to: str, *, caller_id: str, tenant_id: int, amd: Mapping[str, Any] | None = None) -> str:
        """Dial ``to``. With ``amd`` (answering-machine detection settings, ``telephony.amd.AmdSettings``'s
        fields; ``{}`` for its defaults) the answer is reported after the detector's verdict."""
        ...

    def transfer(self, call_ref: str, target: str) -> None:
        """Blind transfer: to an agent (their phone rings; the current agent leaves the call), or to an
        outside number (the call leaves the center and ends as transferred)."""
        ...

    def consult(self, call_ref: str, target: str) -> None:
        """Attended transfer, step 1: the caller is held (music: :class:`HoldChanged`) and the agent talks
        to ``target`` (an agent) on a new leg: :class:`Consult` ringing → connected, or ended."""
        ...

    def complete_transfer(self, call_ref: str) -> None:
        """Step 2: the caller joins the consulted agent and the first agent leaves the call:
        :class:`Transferred` (attended), :class:`Bridged` with the new agent, :class:`HoldChanged` off."""
        ...

    def cancel_transfer(self, call_ref: str) -> None:
        """Or: the consultation leg ends (:class:`Consult` ended) and the caller is back with the first agent
        (:class:`HoldChanged` off)."""
        ...

    def hold(self, call_ref: str, *, on: bool) -> None: ...
    def hangup(self, call_ref: str) -> None: ...
    def record(self, call_ref: str, state: RecordingState) -> None: ...
    def live_calls(self) -> set[str]: ...
    def audio_queued_s(self, call_ref: str) -> float:
        """Seconds of prompts the caller has still to hear (an IVR's key time-out starts after them)."""
        ...


class RemoteAnswer(Protocol):
    """Drivers whose agents' phones can be picked up from the agent desktop (the simulator's phones). A desk
    phone answers on the phone, the browser softphone in the page."""

    def answer_agent_phone(self, call_ref: str, agent: str) -> None: ...


class Monitoring(Protocol):
    """Drivers that let a supervisor listen to a call (silent monitor): ``listener``'s phone is called and hears
    the caller and the agent (a colleague consulted too); nobody hears the listener. :class:`MonitorChanged`
    on when it answers, off when it hangs up, ``stop_monitor`` is called, or the call ends."""

    def monitor(self, call_ref: str, listener: str) -> None: ...
    def stop_monitor(self, call_ref: str, listener: str) -> None: ...
