"""What a pacer sees: the campaign's floor each second, and each finished dial."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PacingState:
    """The campaign now, as the dialer counts it (every pacing tick, ≤ 1 s apart)."""

    now: datetime  # timezone-aware; days and "since midnight" are Japanese days (kit.clock.BUSINESS_TZ)
    agents_active: int  # logged in and working the campaign (ready, talking, in wrap-up; not on break)
    agents_ready: int  # available now, no call
    calls_in_flight: int  # placed, not yet answered or ended (ringing)
    calls_waiting: int  # answered by a person, no agent yet (they hear silence or the greeting)
    leads_available: bool = True  # false: nothing due to dial (VICIdial: the hopper is empty)
    agents_talking: int | None = None  # on a call or their phone ringing for one (None: not counted apart)
    #: Seconds since each talking agent's person answered, and since each wrapping agent's call ended (the
    #: campaign's calls the dialer timed; agents not in them are modelled from the means).
    talking_elapsed: tuple[float, ...] = ()
    wrapping_elapsed: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class DialOutcome:
    """One finished dial (reported once the line's result is known; ``handle_s`` later, see ``handled``)."""

    at: datetime  # when the result was known (answer, or the end of the attempt)
    placed_at: datetime
    human: bool  # a person answered (including people the machine detector took for machines: ``false_machine``)
    machine: bool = False  # an answering machine (as detected)
    abandoned: bool = False  # a person answered and no agent was connected in time (a drop)
    history: bool = False  # read back after a restart: counts towards the abandon windows only


class Pacer(Protocol):
    """A pacing policy: ``decide`` every tick; ``record`` each dial's result; ``handled`` each call's talk +
    wrap-up once the agent is free again, ``wrapped`` the wrap-up alone."""

    def decide(self, state: PacingState) -> int:
        """How many new calls to place now (≥ 0)."""
        ...

    def record(self, outcome: DialOutcome) -> None: ...

    def handled(self, seconds: float, at: datetime) -> None: ...

    def wrapped(self, seconds: float, at: datetime) -> None:
        """An agent's wrap-up after a call lasted ``seconds`` (the tail of ``handled``'s time)."""
        ...

    @property
    def level(self) -> float:
        """The dial level for the wallboard: calls the pacer wants in flight per active agent."""
        ...
