"""The call controller: inbound calls from the driver through the IVR into the ACD and to an agent.

It reacts to driver events and timers, keeps the live state in memory (one :class:`Engine` per tenant), sends
commands through the telephony boundary only, and reports every decision to a :class:`RoutingListener` —
the database listener persists them (``routing.persist``); the benchmark uses none. Configuration (numbers,
queues, members, flows, caller facts) comes from a :class:`Directory`.

Invariant: the system never drops a caller. Every offered call ends answered by an agent, abandoned by the
caller, in voicemail or as a callback request (or where the IVR's designer sent it: a transfer, a closing
message). A missed agent sends the caller to the next agent; a full or slow queue overflows by its rules.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from kakehashi.ivr.flow import Flow
from kakehashi.ivr.runner import CallerFacts, Exit, IvrRun
from kakehashi.routing.engine import AgentState, AgentStateError, Assignment, Engine, QueueRules, Waiting
from kakehashi.telephony.port import (
    Answered,
    Bridged,
    Consult,
    ConsultState,
    Direction,
    DriverEvent,
    DtmfReceived,
    Ended,
    Offered,
    RecordingState,
    SensitiveDtmfReceived,
    TelephonyDriver,
)

MAX_MESSAGE_S = 60.0  # voicemail: the system ends a message this long
CALLBACK_RETRY_S = 600.0
CALLBACK_MAX_ATTEMPTS = 3
VOICEMAIL_PROMPT = "発信音の後にメッセージをどうぞ"
CALLBACK_CONFIRMED = "折り返しお電話いたします。お電話ありがとうございました"
HOLD_MUSIC = "hold-music"
TRANSFER_PRIORITY = 50  # a transferred caller nobody took goes ahead of callers who have not talked yet
DEFAULT_RING_TIMEOUT_S = 15.0
TRANSFER_KINDS = ("agent", "queue", "number")
T = TypeVar("T")


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
    facts: CallerFacts = field(default_factory=CallerFacts)
    last_agent: str | None = None
    last_agent_at: datetime | None = None


@dataclass(frozen=True)
class TenantSetup:
    queues: tuple[QueueRules, ...]
    members: tuple[tuple[str, str, int], ...]  # (agent, queue, level)
    agents: tuple[tuple[str, AgentState, str | None], ...] = ()  # the state each agent was last in
    # (skill, queue) of the queues whose members are the agents with a skill, in queue-name order. An IVR
    # exit with a skill goes to the first queue of that skill.
    skill_queues: tuple[tuple[str, str], ...] = ()


class Directory(Protocol):
    def number(self, dnis: str) -> NumberRoute | None: ...
    def caller(self, tenant_id: int, ani: str) -> Caller: ...
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


@dataclass(eq=False)
class LiveCall:
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


class CallController:
    """Subscribe with :meth:`attach`; all work happens under one lock, events are handled one at a time."""

    def __init__(
        self,
        driver: TelephonyDriver,
        clock: Clock,
        directory: Directory,
        listener: RoutingListener | None = None,
        *,
        measure: bool = False,
    ) -> None:
        self.driver, self.clock, self.directory = driver, clock, directory
        self.listener = listener or RoutingListener()
        self._engines: dict[int, Engine] = {}
        self._skill_queues: dict[int, dict[str, str]] = {}  # tenant → skill → queue
        self._calls: dict[str, LiveCall] = {}  # by driver ref
        self._by_engine_ref: dict[str, LiveCall] = {}
        self._agent_call: dict[str, LiveCall] = {}  # agent → the call they are on / wrapping up
        self._callbacks: dict[str, Waiting] = {}
        self._callback_caller_id: dict[str, str] = {}  # callback key → the number the caller had dialled
        self._handoffs: dict[str, tuple[int, int]] = {}  # agent who transferred a call → (tenant, wrap-up token)
        self._resuming: set[tuple[int, str]] = set()  # (tenant, agent) whose wrap-up resumes after a restart
        self._keys = itertools.count(1)
        self._lock = threading.RLock()
        self._inbox: deque[Callable[[], None]] = deque()
        self._busy = False
        self.measure = measure
        self.decision_ns: list[int] = []

    def attach(self) -> CallController:
        self.driver.subscribe(self.on_event)
        return self

    # -- entry points ------------------------------------------------------------------------------------

    def on_event(self, event: DriverEvent) -> None:
        self._run(lambda: self._handle(event))

    def choose_state(self, tenant_id: int, agent: str, state: AgentState, reason: str | None = None) -> AgentState:
        """An agent (or their supervisor) picks logged-out, available or break; returns the state they are in
        now (a choice made during a call applies after its wrap-up)."""
        result: list[AgentState] = []

        def work() -> None:
            engine = self.engine(tenant_id)
            rec = engine.agent(agent)
            before = rec.state
            assignments = engine.choose_state(agent, state, self._secs(), reason)
            if not assignments and (rec.state is not before or state is AgentState.BREAK):
                self._agent_changed(tenant_id, agent)
            self._dispatch(tenant_id, assignments)
            result.append(rec.state)

        self._run(work)
        return result[0]

    def reload(self, tenant_id: int) -> None:
        """Configuration changed: queues and members are read again; live calls and agents keep their state."""
        self._run(lambda: self._load(tenant_id, self.engine(tenant_id)))

    def engine(self, tenant_id: int) -> Engine:
        engine = self._engines.get(tenant_id)
        if engine is None:
            engine = self._engines[tenant_id] = Engine()
            self._load(tenant_id, engine, restore_states=True)
        return engine

    def restore(self, tenant_ids: Iterable[int], wrap_ups: Sequence[tuple[int, str, str, str | None]]) -> None:
        """After a restart: each tenant's floor is loaded now (agents' stored states corrected at once, not at
        the tenant's first call), and for each (tenant, call ref, agent, queue) of a call left in wrap-up (its
        agent was talking or writing notes when the process stopped) the agent is in wrap-up again, with the
        queue's whole wrap-up time from now to finish the notes (the call was cut, not finished); then it closes
        as any wrap-up that runs out. An agent who is gone or logged out takes no part: the call just closes."""

        def work() -> None:
            self._resuming = {(tenant_id, agent) for tenant_id, _, agent, _ in wrap_ups}
            try:
                for tenant_id in tenant_ids:
                    self.engine(tenant_id)
                for tenant_id, ref, agent, queue in wrap_ups:
                    self._resume_wrap_up(tenant_id, ref, agent, queue)
            finally:
                self._resuming = set()

        self._run(work)

    def _resume_wrap_up(self, tenant_id: int, ref: str, agent: str, queue: str | None) -> None:
        engine = self.engine(tenant_id)
        call = LiveCall(tenant_id, ref, "", stage="wrap_up", queue=queue, agent=agent, engine_ref=ref)
        known = agent in {a.name for a in engine.agents()}
        if known and engine.agent(agent).state is not AgentState.LOGGED_OUT:
            wrap = engine.resume_wrap_up(agent, queue, self._secs())
            self._agent_call[agent] = call
            self._agent_changed(tenant_id, agent, queue=queue, call_ref=ref)
        else:
            wrap = engine.wrap_up_s(queue)
            call.agent = None
        self._calls[ref] = call
        generation = call.generation
        self.clock.call_later(wrap, lambda: self._run(lambda: self._resumed_wrap_up_over(call, generation)))

    def _resumed_wrap_up_over(self, call: LiveCall, generation: int) -> None:
        if call.agent is not None:
            self._wrap_up_done(call, generation)
        elif call.generation == generation and call.stage == "wrap_up":
            call.stage = "done"
            self._calls.pop(call.ref, None)
            self.listener.wrap_up_over(call.tenant_id, call.ref, self.clock.now())

    def wrap_up_finished(self, tenant_id: int, ref: str) -> None:
        """The agent closed the call before the wrap-up time ran out: they are free now."""

        def work() -> None:
            call = self._calls.get(ref)
            if call is not None and call.agent and self._agent_call.get(call.agent) is call:
                self._wrap_up_done(call, call.generation)

        self._run(work)

    def live(self, ref: str) -> LiveCall | None:
        return self._calls.get(ref)

    # -- call control from the agent desktop --------------------------------------------------------------
    # ``by`` is the agent giving the command (it must be their call); None: a supervisor, for any call.

    def answer(self, tenant_id: int, ref: str, agent: str) -> None:
        """Pick up a ringing call (or a colleague's consultation) from the desktop (only drivers whose phones
        can be answered remotely)."""

        def work() -> None:
            call = self._live_call(tenant_id, ref)
            rec = self.engine(tenant_id).agent(agent)
            consulted = call.consult == agent and not call.consult_connected
            if not consulted and (call.stage != "ringing" or rec.ringing_for != call.engine_ref):
                raise CallControlError(f"the call is not ringing at {agent}")
            pick_up = getattr(self.driver, "answer_agent_phone", None)
            if pick_up is None:
                raise CallControlError("answer on the phone: this phone system cannot pick up from the desktop")
            pick_up(ref, agent)

        self._command(work)

    def hold(self, tenant_id: int, ref: str, by: str | None, *, on: bool) -> None:
        def work() -> None:
            call = self._talking(tenant_id, ref, by)
            self.driver.hold(call.ref, on=on)

        self._command(work)

    def hangup(self, tenant_id: int, ref: str, by: str | None) -> None:
        """The agent ends the call; their wrap-up follows as when the caller hangs up."""
        self._command(lambda: self.driver.hangup(self._talking(tenant_id, ref, by).ref))

    def transfer(self, tenant_id: int, ref: str, by: str | None, kind: str, target: str) -> None:
        """Blind transfer to an available agent, into a queue (ahead of new callers) or to an outside number.
        The agent who transfers goes to wrap-up; a transferred caller nobody answers waits in the call's queue."""

        def work() -> None:
            call = self._talking(tenant_id, ref, by)
            engine = self.engine(tenant_id)
            if kind not in TRANSFER_KINDS:
                raise CallControlError(f"transfer to one of {', '.join(TRANSFER_KINDS)}")
            if kind == "queue" and not engine.has_queue(target):
                raise CallControlError(f"no queue {target}")
            if kind == "agent":
                if target == call.agent:
                    raise CallControlError("the call is already with this agent")
                self._reserve(engine, target, call.engine_ref, call.queue)
            first = call.agent
            if first is not None:
                self._hand_off(call, first)
            call.agent = None
            if call.engine_ref != call.ref:  # a callback leg: the callback is done, the caller is a caller now
                self._by_engine_ref.pop(call.engine_ref, None)
                call.engine_ref = call.ref
            match kind:
                case "agent":
                    call.stage, call.transfer_to = "ringing", target
                    call.generation += 1
                    self._agent_changed(tenant_id, target, queue=call.queue, call_ref=call.ref)
                    self.driver.transfer(call.ref, target)
                    self._later(call, self._ring_timeout(call), lambda: self._missed(call))
                case "queue":
                    self.driver.park(call.ref, music=HOLD_MUSIC)
                    self._to_queue(call, target, TRANSFER_PRIORITY)
                case _:
                    call.stage = "done"  # the call leaves the center
                    self.driver.transfer(call.ref, target)

        self._command(work)

    def consult(self, tenant_id: int, ref: str, by: str | None, target: str) -> None:
        """Attended transfer, step 1: the caller holds while the agent talks to an available colleague."""

        def work() -> None:
            call = self._talking(tenant_id, ref, by)
            if target == call.agent:
                raise CallControlError("consult a colleague, not yourself")
            self._reserve(self.engine(tenant_id), target, self._consult_key(call), call.queue)
            call.consult, call.consult_connected = target, False
            call.consult_token = token = next(self._keys)
            self._agent_changed(tenant_id, target, queue=call.queue, call_ref=call.ref)
            self.driver.consult(call.ref, target)
            self.clock.call_later(
                self._ring_timeout(call), lambda: self._run(lambda: self._consult_timed_out(call, token))
            )

        self._command(work)

    def complete_transfer(self, tenant_id: int, ref: str, by: str | None) -> None:
        """Step 2: the caller joins the colleague (who has answered); the first agent goes to wrap-up."""

        def work() -> None:
            call = self._live_call(tenant_id, ref, by)
            if call.consult is None or not call.consult_connected:
                raise CallControlError("no colleague on the line to hand the call to")
            self.driver.complete_transfer(call.ref)

        self._command(work)

    def cancel_transfer(self, tenant_id: int, ref: str, by: str | None) -> None:
        """Or: end the consultation; the caller is back with the first agent."""

        def work() -> None:
            call = self._live_call(tenant_id, ref, by)
            if call.consult is None:
                raise CallControlError("no consultation in progress")
            self.driver.cancel_transfer(call.ref)

        self._command(work)

    def finish_handoff(self, tenant_id: int, agent: str) -> None:
        """An agent who transferred a call closes their notes before the wrap-up time runs out."""

        def work() -> None:
            held = self._handoffs.get(agent)
            if held is None or held[0] != tenant_id:
                raise CallControlError(f"{agent} has no transferred call to close")
            self._handoff_done(tenant_id, agent, held[1])

        self._command(work)

    def monitor(self, tenant_id: int, ref: str, listener: str, *, on: bool) -> None:
        """A supervisor's phone listens to a call (silent monitor), where the phone system can."""

        def work() -> None:
            call = self._live_call(tenant_id, ref)
            if call.stage != "talking":
                raise CallControlError("only a call in conversation can be listened to")
            command = getattr(self.driver, "monitor" if on else "stop_monitor", None)
            if command is None:
                raise CallControlError("this phone system cannot monitor calls")
            command(call.ref, listener)

        self._command(work)

    def queues_of(self, tenant_id: int, agent: str) -> list[str]:
        """The queues the agent takes calls from now (listed members and skill queues), by name."""

        def work() -> list[str]:
            engine = self.engine(tenant_id)
            return sorted(engine.agent(agent).queues) if agent in {a.name for a in engine.agents()} else []

        return self._command(work)

    def can_monitor(self) -> bool:
        return callable(getattr(self.driver, "monitor", None))

    # -- event handling ------------------------------------------------------------------------------------

    def _run(self, work: Callable[[], None]) -> None:
        """Run ``work`` now, or after the work in progress: a command's events (the simulator emits them
        synchronously) are handled after the decision that caused them, never inside it."""
        with self._lock:
            self._inbox.append(work)
            if self._busy:
                return
            self._busy = True
            try:
                while self._inbox:
                    self._inbox.popleft()()
            finally:
                self._busy = False

    def _handle(self, event: DriverEvent) -> None:
        if isinstance(event, Offered):
            self._offered(event)
            return
        call = self._calls.get(event.call_ref)
        if call is None:
            return
        match event:
            case Answered(by="system") if call.stage == "answering":
                self._start(call)
            case Answered(by="remote") if call.stage == "dialing":
                self._callback_answered(call)
            case DtmfReceived(digits=digits) | SensitiveDtmfReceived(digits=digits) if (
                call.ivr is not None and call.stage == "ivr"
            ):
                call.ivr.on_digits(digits)
            case Bridged(agent=agent) if call.consult == agent:
                self._consult_completed(call, agent)
            case Bridged(agent=agent):
                self._bridged(call, agent)
            case Consult(target=target, state=ConsultState.CONNECTED) if call.consult == target:
                self._consult_answered(call, target)
            case Consult(target=target, state=ConsultState.ENDED) if call.consult == target:
                self._consult_over(call, missed=False)
            case Ended():
                self._ended(call, event)

    def _offered(self, event: Offered) -> None:
        if event.direction is not Direction.INBOUND:
            return  # our own callback legs are registered when we originate them
        route = self.directory.number(event.dnis)
        if route is None:
            return  # a number without routing: someone else (a test, an integration) drives it
        call = LiveCall(route.tenant_id, event.call_ref, event.ani, route, engine_ref=event.call_ref)
        self._calls[call.ref] = call
        self.driver.answer(call.ref)

    def _start(self, call: LiveCall) -> None:
        route = call.route
        assert route is not None
        if route.flow is None:
            self._to_queue(call, route.queue or "", None)
            return
        caller = self.directory.caller(call.tenant_id, call.ani)
        call.stage = "ivr"
        call.ivr = IvrRun(
            call.ref,
            route.flow,
            caller.facts,
            self.driver,
            call_later=lambda s, act: self.clock.call_later(s, lambda: self._run(act)),
            now=self.clock.now,
            on_exit=lambda run, where: self._ivr_exit(call, run, where),
        )
        call.ivr.start()

    def _ivr_exit(self, call: LiveCall, run: IvrRun, where: Exit) -> None:
        queue = where.queue or self._skill_queue(call.tenant_id, where.skill)
        self.listener.ivr_exit(call.tenant_id, call.ref, run.path, replace(where, queue=queue), self.clock.now())
        match where.kind:
            case "queue":
                self._to_queue(call, queue or "", where.priority)
            case "voicemail":
                self._voicemail(call, queue)
            case "callback":
                self._request_callback(call, queue or "", where.priority or 0, place=None, since=None)
            case "transfer":
                call.stage = "done"
                self.driver.transfer(call.ref, where.target or "")
            case _:
                call.stage = "done"
                self.driver.hangup(call.ref)

    def _skill_queue(self, tenant_id: int, skill: str | None) -> str | None:
        if skill is None:
            return None
        self.engine(tenant_id)  # loads the tenant's setup on first use
        return self._skill_queues.get(tenant_id, {}).get(skill)

    def _to_queue(self, call: LiveCall, queue: str, priority: int | None) -> None:
        engine = self.engine(call.tenant_id)
        if not engine.has_queue(queue):
            # A flow or number pointing at a queue that was deleted: keep the caller, use any queue we have.
            names = engine.queue_names()
            if not names:
                self._voicemail(call, None)
                return
            queue = names[0]
        rules = engine.rules(queue)
        caller = self.directory.caller(call.tenant_id, call.ani)
        if priority is None:
            priority = dict(rules.rank_priority).get(caller.facts.rank or "", 0)
        preferred = None
        recent = None if caller.last_agent_at is None else (self.clock.now() - caller.last_agent_at).total_seconds()
        if rules.sticky_agent_s and caller.last_agent and recent is not None and recent <= rules.sticky_agent_s:
            preferred = caller.last_agent
        call.queue, call.stage = queue, "waiting"
        call.generation += 1
        self.listener.queued(call.tenant_id, call.ref, queue, priority, self.clock.now())
        if rules.max_length is not None and engine.waiting_count(queue) >= rules.max_length:
            self._overflow(call, None)
            return
        found = self._timed(lambda: engine.offer(call.ref, queue, self._secs(), priority=priority, preferred=preferred))
        if found is None:
            self.driver.park(call.ref, music=HOLD_MUSIC)
        self._schedule_waiting(call, engine)
        self._dispatch(call.tenant_id, [found] if found else [])
        self._queue_changed(call.tenant_id, queue)

    def _schedule_waiting(self, call: LiveCall, engine: Engine) -> None:
        """Escalation steps and the overflow time of a caller, counted from when they took their place."""
        waiting = engine.waiting(call.engine_ref)
        if waiting is None:
            return
        rules = engine.rules(waiting.queue)
        waited = self._secs() - waiting.since
        for after_s, _ in rules.escalation:
            if after_s > waited:
                self._later(call, after_s - waited, lambda: self._escalate(call))
        if rules.max_wait_s is not None and rules.overflow_action != "none":
            self._later(call, max(0.0, rules.max_wait_s - waited), lambda: self._overflow_if_waiting(call))

    def _later(self, call: LiveCall, seconds: float, action: Callable[[], None]) -> None:
        generation = call.generation

        def fire() -> None:
            if call.generation == generation and call.stage in ("waiting", "ringing"):
                action()

        self.clock.call_later(seconds, lambda: self._run(fire))

    def _escalate(self, call: LiveCall) -> None:
        engine = self.engine(call.tenant_id)
        found = self._timed(lambda: engine.escalate(call.engine_ref, self._secs()))
        self._dispatch(call.tenant_id, [found] if found else [])

    def _overflow_if_waiting(self, call: LiveCall) -> None:
        waiting = self.engine(call.tenant_id).waiting(call.engine_ref)
        if waiting is not None and not waiting.ringing and call.stage == "waiting":
            self._overflow(call, waiting)

    def _overflow(self, call: LiveCall, waiting: Waiting | None) -> None:
        """The queue is full or the caller waited too long: another queue (same place), voicemail, callback."""
        engine = self.engine(call.tenant_id)
        rules = engine.rules(call.queue or "")
        engine.remove(call.engine_ref)
        self._queue_changed(call.tenant_id, rules.name)
        place = waiting.place if waiting else None
        since = waiting.since if waiting else None
        priority = waiting.priority if waiting else 0
        match rules.overflow_action:
            case "queue" if rules.overflow_queue and engine.has_queue(rules.overflow_queue):
                target = rules.overflow_queue
                call.queue, call.generation = target, call.generation + 1
                self.listener.queued(call.tenant_id, call.ref, target, priority, self.clock.now())
                found = self._timed(
                    lambda: engine.offer(call.ref, target, self._secs(), priority=priority, place=place, since=since)
                )
                self._schedule_waiting(call, engine)
                self._dispatch(call.tenant_id, [found] if found else [])
                self._queue_changed(call.tenant_id, target)
            case "callback":
                self._request_callback(call, rules.name, priority, place=place, since=since)
            case "voicemail":
                self._voicemail(call, rules.name)
            case _:  # "none" with a max length: the caller keeps waiting rather than being dropped
                found = self._timed(
                    lambda: engine.offer(
                        call.ref, rules.name, self._secs(), priority=priority, place=place, since=since
                    )
                )
                self._dispatch(call.tenant_id, [found] if found else [])

    def _voicemail(self, call: LiveCall, queue: str | None) -> None:
        call.stage, call.queue = "deflected", queue or call.queue
        call.generation += 1
        self.listener.deflected(call.tenant_id, call.ref, "voicemail", call.queue, call.ani, self.clock.now())
        self.driver.play(call.ref, VOICEMAIL_PROMPT)
        self.driver.record(call.ref, RecordingState.STARTED)
        generation = call.generation
        self.clock.call_later(
            MAX_MESSAGE_S,
            lambda: self._run(lambda: self._end_message(call) if call.generation == generation else None),
        )

    def _end_message(self, call: LiveCall) -> None:
        if call.stage == "deflected":
            call.stage = "done"
            self.driver.hangup(call.ref)

    def _request_callback(
        self, call: LiveCall, queue: str, priority: int, *, place: int | None, since: float | None
    ) -> None:
        """The caller hangs up and keeps their place: the callback waits in the queue like a caller."""
        engine = self.engine(call.tenant_id)
        if not engine.has_queue(queue):
            self._voicemail(call, queue)
            return
        call.stage, call.queue = "deflected", queue
        call.generation += 1
        key = f"cb-{call.ref}"
        now = self.clock.now()
        since_s = self._secs() if since is None else since
        place_at = datetime.fromtimestamp(since_s, tz=now.tzinfo) if since is not None else now
        self.listener.deflected(call.tenant_id, call.ref, "callback", queue, call.ani, now)
        self.listener.callback_requested(call.tenant_id, key, call.ref, queue, call.ani, priority, place_at, now)
        self.driver.play(call.ref, CALLBACK_CONFIRMED)
        self.driver.hangup(call.ref)
        if call.route is not None:  # we call back from the number they called, so they know who it is
            self._callback_caller_id[key] = call.route.callback_caller_id
        self._offer_callback(call.tenant_id, key, queue, call.ani, priority, place, since_s, attempts=0)

    def _offer_callback(
        self, tenant_id: int, key: str, queue: str, number: str, priority: int, place: int | None, since: float,
        attempts: int,
    ) -> None:  # fmt: skip
        engine = self.engine(tenant_id)
        info = {"number": number, "attempts": attempts}
        found = self._timed(
            lambda: engine.offer(
                key, queue, self._secs(), priority=priority, place=place, since=since, kind="callback", info=info
            )
        )
        waiting = engine.waiting(key)
        if waiting is not None:
            self._callbacks[key] = waiting
        self._dispatch(tenant_id, [found] if found else [])
        self._queue_changed(tenant_id, queue)

    def add_callback(
        self, tenant_id: int, key: str, queue: str, number: str, priority: int, place_at: datetime, attempts: int,
        caller_id: str = "",
    ) -> None:  # fmt: skip
        """A pending callback from the database (after a restart), at its old place; ``caller_id`` is the
        number the customer will see (the one they had dialled)."""
        if caller_id:
            self._callback_caller_id[key] = caller_id
        self._run(
            lambda: self._offer_callback(tenant_id, key, queue, number, priority, None, place_at.timestamp(), attempts)
        )

    # -- agents and calls ---------------------------------------------------------------------------------

    def _dispatch(self, tenant_id: int, assignments: Iterable[Assignment]) -> None:
        for found in assignments:
            waiting = found.waiting
            call = None if waiting.kind == "callback" else self._by_ref(waiting.ref)
            if call is not None:
                call.stage = "ringing"
                call.generation += 1
                # The phones ring first, the agents' new state is stored after: the ringing event (with the
                # screen pop) leaves a few milliseconds earlier.
                for agent in found.agents:
                    self.driver.route_to_agent(call.ref, agent)
            for agent in found.agents:
                self._agent_changed(tenant_id, agent, queue=waiting.queue, call_ref=waiting.ref)
            if waiting.kind == "callback":
                self._dial_callback(tenant_id, waiting, found.agents[0])
                continue
            if call is None:
                continue
            timeout = self.engine(tenant_id).rules(waiting.queue).ring_timeout_s
            self._later(call, timeout, lambda call=call: self._missed(call))  # type: ignore[misc]

    def _by_ref(self, engine_ref: str) -> LiveCall | None:
        return self._by_engine_ref.get(engine_ref) or self._calls.get(engine_ref)

    def _dial_callback(self, tenant_id: int, waiting: Waiting, agent: str) -> None:
        """An agent is free for a callback: they are held while we dial the customer."""
        route_caller_id = self._callback_caller_id.get(waiting.ref, "")
        attempts = int(waiting.info.get("attempts", 0)) + 1
        waiting.info["attempts"] = attempts
        ref = self.driver.originate(str(waiting.info["number"]), caller_id=route_caller_id, tenant_id=tenant_id)
        leg = LiveCall(tenant_id, ref, str(waiting.info["number"]), stage="dialing", engine_ref=waiting.ref)
        leg.queue, leg.agent = waiting.queue, agent
        self._calls[ref] = leg
        self._by_engine_ref[waiting.ref] = leg
        self.listener.callback_attempt(tenant_id, waiting.ref, "dialing", agent, ref, self.clock.now())

    def _callback_answered(self, call: LiveCall) -> None:
        call.stage = "ringing"
        call.generation += 1
        assert call.agent is not None
        self.driver.route_to_agent(call.ref, call.agent)
        timeout = self.engine(call.tenant_id).rules(call.queue or "").ring_timeout_s
        self._later(call, timeout, lambda: self._missed(call))

    def _missed(self, call: LiveCall) -> None:
        """Nobody picked up in time: those agents are 'missed'; the caller goes to the next agent, same place."""
        if call.stage != "ringing":
            return
        engine = self.engine(call.tenant_id)
        self.driver.park(call.ref, music=HOLD_MUSIC)
        if call.transfer_to is not None:  # a transfer nobody took: the caller waits in the call's queue, ahead
            call.transfer_to = None
            agents, _ = engine.ring_ended(call.engine_ref, self._secs(), missed=True)
            for agent in agents:
                self._agent_changed(call.tenant_id, agent)
            names = engine.queue_names()
            queue = call.queue if call.queue and engine.has_queue(call.queue) else (names[0] if names else "")
            self._to_queue(call, queue, TRANSFER_PRIORITY)
            return
        call.stage = "waiting"
        call.generation += 1
        agents, assignments = engine.ring_ended(call.engine_ref, self._secs(), missed=True)
        for agent in agents:
            self._agent_changed(call.tenant_id, agent)
        self.listener.queued(call.tenant_id, call.ref, call.queue or "", 0, self.clock.now())
        self._schedule_waiting(call, engine)
        self._dispatch(call.tenant_id, assignments)

    def _bridged(self, call: LiveCall, agent: str) -> None:
        engine = self.engine(call.tenant_id)
        if call.stage not in ("ringing", "waiting"):
            return
        call.stage, call.agent, call.transfer_to = "talking", agent, None
        call.generation += 1
        partners = [a.name for a in engine.agents() if a.ringing_for == call.engine_ref and a.name != agent]
        assignments = engine.answered(call.engine_ref, agent, self._secs())
        self._callbacks.pop(call.engine_ref, None)
        if call.engine_ref != call.ref:
            self.listener.callback_attempt(call.tenant_id, call.engine_ref, "done", agent, call.ref, self.clock.now())
        self._agent_call[agent] = call
        self._agent_changed(call.tenant_id, agent, queue=call.queue, call_ref=call.ref)
        for partner in partners:  # ring-all: the others are free again (or take the next caller below)
            self._agent_changed(call.tenant_id, partner)
        self._dispatch(call.tenant_id, assignments)
        self._queue_changed(call.tenant_id, call.queue or "")

    def _ended(self, call: LiveCall, event: Ended) -> None:
        engine = self.engine(call.tenant_id)
        if call.consult is not None:
            self._consult_over(call, missed=False)
        stage = call.stage
        call.generation += 1
        call.stage = "done"
        self._calls.pop(call.ref, None)
        if call.ivr is not None:
            call.ivr.stop()
        if stage in ("waiting", "ringing") and call.engine_ref == call.ref:
            engine.remove(call.ref)  # the caller hung up while waiting: an abandon (the caller's choice)
            if stage == "ringing":
                agents, assignments = engine.ring_ended(call.ref, self._secs(), missed=False)
                for agent in agents:
                    self._agent_changed(call.tenant_id, agent)
                self._dispatch(call.tenant_id, assignments)
            self._queue_changed(call.tenant_id, call.queue or "")
        elif stage in ("dialing", "ringing", "waiting"):  # a callback leg that did not reach an agent
            self._callback_leg_failed(call, stage)
        elif stage == "talking" and call.agent:
            wrap = engine.call_finished(call.agent, self._secs())
            self._agent_changed(call.tenant_id, call.agent, queue=call.queue, call_ref=call.ref)
            self._calls[call.ref] = call  # kept until the wrap-up is over
            call.stage = "wrap_up"
            generation = call.generation
            self.clock.call_later(wrap, lambda: self._run(lambda: self._wrap_up_done(call, generation)))

    def _callback_leg_failed(self, call: LiveCall, stage: str) -> None:
        engine = self.engine(call.tenant_id)
        waiting = engine.remove(call.engine_ref)
        self._by_engine_ref.pop(call.engine_ref, None)
        agents, assignments = engine.ring_ended(call.engine_ref, self._secs(), missed=False)
        for agent in agents:
            self._agent_changed(call.tenant_id, agent)
        self._dispatch(call.tenant_id, assignments)
        if waiting is None:
            return
        attempts = int(waiting.info.get("attempts", 1))
        now = self.clock.now()
        if attempts >= CALLBACK_MAX_ATTEMPTS:
            self._callbacks.pop(call.engine_ref, None)
            self.listener.callback_attempt(call.tenant_id, call.engine_ref, "failed", None, call.ref, now)
            return
        self.listener.callback_attempt(call.tenant_id, call.engine_ref, "pending", None, call.ref, now)
        key, queue, number = waiting.ref, waiting.queue, str(waiting.info["number"])
        self.clock.call_later(
            CALLBACK_RETRY_S,
            lambda: self._run(
                lambda: self._offer_callback(
                    call.tenant_id, key, queue, number, waiting.priority, waiting.place, waiting.since, attempts
                )
            ),
        )

    def _wrap_up_done(self, call: LiveCall, generation: int) -> None:
        if call.generation != generation or call.agent is None or call.stage != "wrap_up":
            return
        call.stage = "done"
        call.generation += 1
        self._calls.pop(call.ref, None)
        self._agent_call.pop(call.agent, None)
        self.listener.wrap_up_over(call.tenant_id, call.ref, self.clock.now())
        engine = self.engine(call.tenant_id)
        assignments = self._timed(lambda: engine.wrap_up_done(call.agent or "", self._secs()))
        if not assignments:  # otherwise the assignment reports the agent ringing
            self._agent_changed(call.tenant_id, call.agent)
        self._dispatch(call.tenant_id, assignments)

    # -- transfers --------------------------------------------------------------------------------------------

    def _reserve(self, engine: Engine, agent: str, key: str, queue: str | None) -> None:
        try:
            engine.reserve(agent, key, queue, self._secs())
        except AgentStateError as exc:
            raise CallControlError(str(exc)) from None

    @staticmethod
    def _consult_key(call: LiveCall) -> str:
        return f"consult:{call.ref}"  # the colleague rings "for" this key, not for the caller's place

    def _ring_timeout(self, call: LiveCall) -> float:
        engine = self.engine(call.tenant_id)
        if call.queue and engine.has_queue(call.queue):
            return engine.rules(call.queue).ring_timeout_s
        return DEFAULT_RING_TIMEOUT_S

    def _hand_off(self, call: LiveCall, agent: str) -> None:
        """The agent's part of the call is over (they transferred it): their wrap-up starts; the call goes on."""
        wrap = self.engine(call.tenant_id).call_finished(agent, self._secs())
        self._agent_call.pop(agent, None)
        token = next(self._keys)
        self._handoffs[agent] = (call.tenant_id, token)
        self._agent_changed(call.tenant_id, agent, queue=call.queue, call_ref=call.ref)
        tenant_id = call.tenant_id
        self.clock.call_later(wrap, lambda: self._run(lambda: self._handoff_done(tenant_id, agent, token)))

    def _handoff_done(self, tenant_id: int, agent: str, token: int) -> None:
        if self._handoffs.get(agent) != (tenant_id, token):
            return
        del self._handoffs[agent]
        assignments = self.engine(tenant_id).wrap_up_done(agent, self._secs())
        if not assignments:
            self._agent_changed(tenant_id, agent)
        self._dispatch(tenant_id, assignments)

    def _consult_answered(self, call: LiveCall, target: str) -> None:
        call.consult_connected = True
        self.engine(call.tenant_id).answered(self._consult_key(call), target, self._secs())
        self._agent_changed(call.tenant_id, target, queue=call.queue, call_ref=call.ref)

    def _consult_over(self, call: LiveCall, *, missed: bool) -> None:
        """The consultation ended without a transfer: the colleague is free again (or missed it)."""
        target, connected = call.consult, call.consult_connected
        if target is None:
            return
        call.consult, call.consult_connected = None, False
        engine = self.engine(call.tenant_id)
        if connected:
            engine.call_finished(target, self._secs())  # a consultation leaves no notes to write
            assignments = engine.wrap_up_done(target, self._secs())
        else:
            _, assignments = engine.ring_ended(self._consult_key(call), self._secs(), missed=missed)
        if not assignments:
            self._agent_changed(call.tenant_id, target)
        self._dispatch(call.tenant_id, assignments)

    def _consult_timed_out(self, call: LiveCall, token: int) -> None:
        if call.consult is None or call.consult_connected or call.consult_token != token:
            return
        self._consult_over(call, missed=True)
        self.driver.cancel_transfer(call.ref)  # its Consult(ended) finds nothing left to do

    def _consult_completed(self, call: LiveCall, target: str) -> None:
        first = call.agent
        call.consult, call.consult_connected = None, False
        if first is not None:
            self._hand_off(call, first)
        call.agent = target
        self._agent_call[target] = call
        self._agent_changed(call.tenant_id, target, queue=call.queue, call_ref=call.ref)

    def _live_call(self, tenant_id: int, ref: str, by: str | None = None) -> LiveCall:
        call = self._calls.get(ref)
        if call is None or call.tenant_id != tenant_id or call.stage in ("done", "wrap_up"):
            raise CallControlError("the call is not in progress")
        if by is not None and call.agent != by:
            raise CallControlError(f"{by} is not on this call")
        return call

    def _talking(self, tenant_id: int, ref: str, by: str | None) -> LiveCall:
        call = self._live_call(tenant_id, ref, by)
        if call.stage != "talking":
            raise CallControlError("the call is not in conversation")
        if call.consult is not None:
            raise CallControlError("complete or cancel the transfer first")
        return call

    def _command(self, work: Callable[[], T]) -> T:
        """Run a command under the lock; its refusal is raised to the caller after the queue of work drained."""
        box: list[tuple[bool, Any]] = []

        def run() -> None:
            try:
                box.append((True, work()))
            except CallControlError as exc:
                box.append((False, exc))
            except AgentStateError as exc:  # e.g. an unknown agent
                box.append((False, CallControlError(str(exc))))

        self._run(run)
        if not box:  # given from inside an event handler: it runs after the event, and cannot answer
            raise CallControlError("the command was queued behind the event being handled")
        ok, value = box[0]
        if not ok:
            raise value
        result: T = value
        return result

    # -- helpers ----------------------------------------------------------------------------------------------

    def _load(self, tenant_id: int, engine: Engine, *, restore_states: bool = False) -> None:
        setup = self.directory.setup(tenant_id)
        known = {rec.name for rec in engine.agents()}  # before memberships add agents
        for rules in setup.queues:
            engine.set_queue(rules)
        skill_queues: dict[str, str] = {}
        for skill, queue in setup.skill_queues:
            skill_queues.setdefault(skill, queue)
        self._skill_queues[tenant_id] = skill_queues
        wanted = {(agent, queue): level for agent, queue, level in setup.members}
        for rec in list(engine.agents()):
            for queue in list(rec.queues):
                if (rec.name, queue) not in wanted:
                    engine.remove_member(rec.name, queue)
        for (agent, queue), level in wanted.items():
            if engine.has_queue(queue):
                engine.set_member(agent, queue, level)
        for agent, state, reason in setup.agents:
            if restore_states or agent not in known:  # at start-up, or an agent created since
                engine.add_agent(agent)
                # Calls do not survive a restart of the simulator; an agent who was busy is free again (and back
                # in wrap-up where their call is: ``restore``).
                chosen = state if state in (AgentState.BREAK, AgentState.LOGGED_OUT) else AgentState.AVAILABLE
                if state is not AgentState.LOGGED_OUT:
                    engine.choose_state(agent, chosen, self._secs(), reason if chosen is AgentState.BREAK else None)
                # The stored state (ringing, on a call…) is no longer true: say so, unless a wrap-up resumes now.
                if chosen is not state and (tenant_id, agent) not in self._resuming:
                    self._agent_changed(tenant_id, agent)

    def _agent_changed(
        self, tenant_id: int, agent: str, *, queue: str | None = None, call_ref: str | None = None
    ) -> None:
        rec = self.engine(tenant_id).agent(agent)
        self.listener.agent_state(tenant_id, agent, rec.state, rec.reason, queue, call_ref, self.clock.now())

    def _queue_changed(self, tenant_id: int, queue: str) -> None:
        engine = self.engine(tenant_id)
        if not engine.has_queue(queue):
            return
        states: dict[str, int] = {}
        for rec in engine.agents():
            if queue in rec.queues:
                states[rec.state.value] = states.get(rec.state.value, 0) + 1
        self.listener.queue_changed(tenant_id, queue, engine.waiting_count(queue), states, self.clock.now())

    def _secs(self) -> float:
        return self.clock.now().timestamp()

    def _timed(self, decide: Callable[[], T]) -> T:
        if not self.measure:
            return decide()
        started = time.perf_counter_ns()
        try:
            return decide()
        finally:
            self.decision_ns.append(time.perf_counter_ns() - started)
