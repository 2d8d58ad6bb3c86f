"""The call controller's plumbing, shared by its modules: the live state, the one lock and inbox every piece of
work runs through, the tenants' engines and their configuration, and the reports to the listener.

:class:`ControllerBase` also names the steps one module asks of another (the queueing core of ``controller``,
the transfers of ``desk_commands``, the voicemail and callbacks of ``deflections``); each is implemented in the
module named on its line.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from kakehashi.routing.engine import AgentState, AgentStateError, Assignment, Engine, Waiting
from kakehashi.routing.live_types import CallControlError, Clock, Directory, LiveCall, RoutingListener
from kakehashi.telephony.port import TelephonyDriver

T = TypeVar("T")


class ControllerBase:
    """State and plumbing of :class:`~kakehashi.routing.controller.CallController` (use that class)."""

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

    def engine(self, tenant_id: int) -> Engine:
        """The tenant's ACD engine, loaded from the directory on first use."""
        engine = self._engines.get(tenant_id)
        if engine is None:
            engine = self._engines[tenant_id] = Engine()
            self._load(tenant_id, engine, restore_states=True)
        return engine

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
        if engine.has_agent(agent) and engine.agent(agent).state is not AgentState.LOGGED_OUT:
            wrap = engine.resume_wrap_up(agent, queue, self._secs())
            self._agent_call[agent] = call
            self._agent_changed(tenant_id, agent, queue=queue, call_ref=ref)
        else:
            wrap = engine.wrap_up_s(queue)
            call.agent = None
        self._calls[ref] = call
        generation = call.generation
        self.clock.call_later(wrap, lambda: self._run(lambda: self._resumed_wrap_up_over(call, generation)))

    def lines_in_use(self) -> int:
        """Calls whose line is up (ringing, answered, in the IVR, queued, talking): what they take of the trunk.
        A call in wrap-up or done holds no line."""
        with self._lock:
            return sum(call.stage not in ("wrap_up", "done") for call in self._calls.values())

    def _resumed_wrap_up_over(self, call: LiveCall, generation: int) -> None:
        if call.agent is not None:
            self._wrap_up_done(call, generation)
        elif call.generation == generation and call.stage == "wrap_up":
            call.stage = "done"
            self._calls.pop(call.ref, None)
            self.listener.wrap_up_over(call.tenant_id, call.ref, self.clock.now())

    def _agent_changed(
        self, tenant_id: int, agent: str, *, queue: str | None = None, call_ref: str | None = None
    ) -> None:
        rec = self.engine(tenant_id).agent(agent)
        self.listener.agent_state(tenant_id, agent, rec.state, rec.reason, queue, call_ref, self.clock.now())

    def _queue_changed(self, tenant_id: int, queue: str) -> None:
        engine = self.engine(tenant_id)
        if not engine.has_queue(queue):
            return
        # Counted over the queue's members, not the floor: this runs for every call.
        states = engine.member_states(queue)
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

    def _later(self, call: LiveCall, seconds: float, action: Callable[[], None]) -> None:
        generation = call.generation

        def fire() -> None:
            if call.generation == generation and call.stage in ("waiting", "ringing"):
                action()

        self.clock.call_later(seconds, lambda: self._run(fire))

    def _by_ref(self, engine_ref: str) -> LiveCall | None:
        return self._by_engine_ref.get(engine_ref) or self._calls.get(engine_ref)

    # -- steps implemented by the controller's other modules ---------------------------------------------------

    def _to_queue(self, call: LiveCall, queue: str, priority: int | None) -> None:  # controller
        raise NotImplementedError

    def _missed(self, call: LiveCall) -> None:  # controller
        raise NotImplementedError

    def _dispatch(self, tenant_id: int, assignments: Iterable[Assignment]) -> None:  # controller
        raise NotImplementedError

    def _voicemail(self, call: LiveCall, queue: str | None) -> None:  # deflections
        raise NotImplementedError

    def _consult_answered(self, call: LiveCall, target: str) -> None:  # desk_commands
        raise NotImplementedError

    def _consult_over(self, call: LiveCall, *, missed: bool) -> None:  # desk_commands
        raise NotImplementedError

    def _consult_completed(self, call: LiveCall, target: str) -> None:  # desk_commands
        raise NotImplementedError

    def _request_callback(
        self, call: LiveCall, queue: str, priority: int, *, place: int | None, since: float | None
    ) -> None:  # deflections
        raise NotImplementedError

    def _dial_callback(self, tenant_id: int, waiting: Waiting, agent: str) -> None:  # deflections
        raise NotImplementedError

    def _callback_answered(self, call: LiveCall) -> None:  # deflections
        raise NotImplementedError

    def _callback_leg_failed(self, call: LiveCall, stage: str) -> None:  # deflections
        raise NotImplementedError

    def _wrap_up_done(self, call: LiveCall, generation: int) -> None:  # controller
        raise NotImplementedError

    def _outbound_answered(self, call: LiveCall) -> None:  # outbound
        raise NotImplementedError
