"""The call controller's vocabulary: live calls, what it reads (:class:`Directory`), what it reports
(:class:`RoutingListener`), its clock and its refusals. Shared by the controller's modules (``controller``:
the queueing core, ``desk_commands``: the desktop's commands and transfers, ``callbacks``) and by the
directories and listeners that plug into it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from kakehashi.ivr.flow import Flow
from kakehashi.ivr.runner import CallerFacts, Exit, IvrRun
from kakehashi.routing.engine import AgentState, QueueRules

MAX_MESSAGE_S = 60.0  # voicemail: the system ends a message this long
CALLBACK_RETRY_S = 600.0
CALLBACK_MAX_ATTEMPTS = 3
VOICEMAIL_PROMPT = "発信音の後にメッセージをどうぞ"
CALLBACK_CONFIRMED = "折り返しお電話いたします。お電話ありがとうございました"
HOLD_MUSIC = "hold-music"
TRANSFER_PRIORITY = 50  # a transferred caller nobody took goes ahead of callers who have not talked yet
DEFAULT_RING_TIMEOUT_S = 15.0
TRANSFER_KINDS = ("agent", "queue", "number")


class CallControlError(ValueError):
    """A call-control command that does not fit the call now (not in progress, not yours, on hold…)."""


class Clock(Protocol):
    def now(self) -> datetime: ...
    def call_later(self, seconds: float, action: Callable[[], None]) -> None: ...


@dataclass(frozen=True)
class NumberRoute:
    """What answers a number: an IVR flow, else straight into a queue."""

    tenant_id: int
    flow: Flow | None = None
    queue: str | None = None
    callback_caller_id: str = ""  # the number shown when we call back


@dataclass(frozen=True)
class Caller:
    """What routing knows of a caller: facts for the IVR's branches and the last agent (sticky routing)."""

    facts: CallerFacts = field(default_factory=CallerFacts)
    last_agent: str | None = None
    last_agent_at: datetime | None = None


@dataclass(frozen=True)
class TenantSetup:
    """A tenant's routing configuration as the engine needs it."""

    queues: tuple[QueueRules, ...]
    members: tuple[tuple[str, str, int], ...]  # (agent, queue, level)
    agents: tuple[tuple[str, AgentState, str | None], ...] = ()  # the state each agent was last in
    # (skill, queue) of the queues whose members are the agents with a skill, in queue-name order. An IVR
    # exit with a skill goes to the first queue of that skill.
    skill_queues: tuple[tuple[str, str], ...] = ()


class Directory(Protocol):
    """Where the controller reads its configuration and what it knows of a caller."""

    def number(self, dnis: str) -> NumberRoute | None: ...
    def caller(self, tenant_id: int, ani: str, call: tuple[str, str] | None = None) -> Caller:
        """Facts about the caller of ``ani``. ``call`` is (driver, call ref) of the call ``calls.sink`` stored
        first: a directory that can read it uses the customer matched there instead of looking the number up
        again (asked once per call; the controller keeps the answer)."""
        ...

    def setup(self, tenant_id: int) -> TenantSetup: ...


class RoutingListener:
    """What the controller decided, for persistence and live views. The base class ignores everything."""

    def queued(self, tenant_id: int, ref: str, queue: str, priority: int, at: datetime) -> None: ...
    def agent_state(
        self, tenant_id: int, agent: str, state: AgentState, reason: str | None, queue: str | None,
        call_ref: str | None, at: datetime,
    ) -> None: ...  # fmt: skip
    def deflected(self, tenant_id: int, ref: str, kind: str, queue: str | None, ani: str, at: datetime) -> None: ...
    def callback_requested(
        self, tenant_id: int, key: str, ref: str, queue: str, number: str, priority: int, place_at: datetime,
        at: datetime,
    ) -> None: ...  # fmt: skip
    def callback_attempt(
        self, tenant_id: int, key: str, status: str, agent: str | None, call_ref: str | None, at: datetime
    ) -> None: ...
    def wrap_up_over(self, tenant_id: int, ref: str, at: datetime) -> None: ...
    def ivr_exit(self, tenant_id: int, ref: str, path: list[str], exit: Exit, at: datetime) -> None: ...
    def queue_changed(self, tenant_id: int, queue: str, waiting: int, agents: dict[str, int], at: datetime) -> None: ...
    def outbound_dialed(self, tenant_id: int, ref: str, agent: str, tag: dict[str, Any], at: datetime) -> None:
        """An outbound call for ``agent`` is being dialled (``routing.outbound``); ``tag`` is the requester's."""

    def outbound_result(
        self, tenant_id: int, ref: str, agent: str, tag: dict[str, Any], result: str, at: datetime
    ) -> None:
        """What the line of an outbound call did: answered (the agent is rung), or why it ended before."""


@dataclass(frozen=True, eq=False)
class Unattended:
    """How a call placed with no agent held (predictive dialing) goes on once answered (``routing.predictive``).

    ``pool``: the agents who may take it, best first, asked when a person answers (and again as agents free up
    within ``connect_within_s``); ``abandon_prompt``: what a person hears when nobody came in time (the
    campaign's identification message) before we hang up; ``amd_action`` for a detected machine: ``drop``,
    ``message`` (``machine_prompt`` is played after its greeting, then we hang up) or ``agent``."""

    pool: Callable[[], Sequence[str]]
    connect_within_s: float = 2.0
    abandon_prompt: str | None = None
    amd_action: str = "drop"
    machine_prompt: str | None = None


@dataclass(eq=False)
class LiveCall:
    """A call the controller follows, from the offer to the end of its wrap-up (memory only)."""

    tenant_id: int
    ref: str
    ani: str
    route: NumberRoute | None = None
    stage: str = "answering"  # answering | ivr | waiting | ringing | talking | deflected | dialing | done
    ivr: IvrRun | None = None
    queue: str | None = None
    agent: str | None = None
    engine_ref: str = ""  # the engine's key: the call ref, or the callback's key for a callback leg
    generation: int = 0  # bumps on every stage change; timers of an older stage do nothing
    callback: dict[str, object] = field(default_factory=dict)
    transfer_to: str | None = None  # a blind transfer rings this agent
    consult: str | None = None  # the agent consulted for an attended transfer
    consult_connected: bool = False
    consult_token: int = 0  # the consultation's ring time-out does nothing for a later consultation
    caller: Caller | None = None  # asked of the directory once, for the IVR or the queue, whichever is first
    outbound: dict[str, Any] | None = None  # an outbound call for an agent: the requester's tag (routing.outbound)
    wrap_up_s: float | None = None  # the wrap-up after talking, when not the queue's (an outbound call's)
    timed_out: bool = False  # we hung up an outbound call ourselves (ring or pick-up time-out)
    unattended: Unattended | None = None  # a predictive call: no agent held while it rings (routing.predictive)
