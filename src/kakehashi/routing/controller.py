"""The call controller: inbound calls from the driver through the IVR into the ACD and to an agent.

It reacts to driver events and timers, keeps the live state in memory (one :class:`Engine` per tenant), sends
commands through the telephony boundary only, and reports every decision to a :class:`RoutingListener` —
the database listener persists them (``routing.persist``); the benchmark uses none. Configuration (numbers,
queues, members, flows, caller facts) comes from a :class:`Directory`.

Invariant: the system never drops a caller. Every offered call ends answered by an agent, abandoned by the
caller, in voicemail or as a callback request (or where the IVR's designer sent it: a transfer, a closing
message). A missed agent sends the caller to the next agent; a full or slow queue overflows by its rules.

The controller is one class in five modules: this one (the entry points and the queueing core: offer, IVR,
queue, ring, answer, hang-up, wrap-up), ``desk_commands`` (the desktop's commands and transfers),
``deflections`` (callbacks and voicemail), ``outbound`` (dialing for an agent: campaigns, manual dials) and
``control_base`` (state, lock, engines, restart, listener reports). Its vocabulary (live calls, directory,
listener, errors) is in ``live_types`` and re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from kakehashi.ivr.runner import Exit, IvrRun
from kakehashi.routing.deflections import Deflections
from kakehashi.routing.desk_commands import DeskCommands
from kakehashi.routing.engine import AgentState, Assignment, Engine, Waiting
from kakehashi.routing.live_types import (
    CALLBACK_CONFIRMED,
    CALLBACK_MAX_ATTEMPTS,
    CALLBACK_RETRY_S,
    DEFAULT_RING_TIMEOUT_S,
    HOLD_MUSIC,
    MAX_MESSAGE_S,
    TRANSFER_KINDS,
    TRANSFER_PRIORITY,
    VOICEMAIL_PROMPT,
    CallControlError,
    Caller,
    Clock,
    Directory,
    LiveCall,
    NumberRoute,
    RoutingListener,
    TenantSetup,
)
from kakehashi.routing.outbound import OutboundCalls
from kakehashi.routing.predictive import UnattendedCalls
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
    SensitiveDtmfReceived,
)

__all__ = [
    "CALLBACK_CONFIRMED", "CALLBACK_MAX_ATTEMPTS", "CALLBACK_RETRY_S", "DEFAULT_RING_TIMEOUT_S", "HOLD_MUSIC",
    "MAX_MESSAGE_S", "TRANSFER_KINDS", "TRANSFER_PRIORITY", "VOICEMAIL_PROMPT", "CallControlError", "CallController",
    "Caller", "Clock", "Directory", "LiveCall", "NumberRoute", "RoutingListener", "TenantSetup",
]  # fmt: skip


class CallController(DeskCommands, Deflections, OutboundCalls, UnattendedCalls):
    """Subscribe with :meth:`attach`; all work happens under one lock, events are handled one at a time."""

    def attach(self) -> CallController:
        """Subscribe to the driver's events (after ``calls.sink``, which stores each event first)."""
        self.driver.subscribe(self.on_event)
        return self

    # -- entry points ------------------------------------------------------------------------------------

    def on_event(self, event: DriverEvent) -> None:
        """A driver event: handled now, or after the work in progress (see ``_run``)."""
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

    def wrap_up_finished(self, tenant_id: int, ref: str) -> None:
        """The agent closed the call before the wrap-up time ran out: they are free now."""

        def work() -> None:
            call = self._calls.get(ref)
            if call is not None and call.agent and self._agent_call.get(call.agent) is call:
                self._wrap_up_done(call, call.generation)

        self._run(work)

    def live(self, ref: str) -> LiveCall | None:
        """The live call of a driver reference (None once it is over)."""
        return self._calls.get(ref)

    # -- the queueing core ---------------------------------------------------------------------------------

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
            case Answered(by="remote", amd=amd) if call.stage == "dialing" and call.unattended is not None:
                self._unattended_answered(call, amd)
            case Answered(by="remote") if call.stage == "dialing" and call.outbound is not None:
                self._outbound_answered(call)
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
        caller = self._caller(call)
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

    def _caller(self, call: LiveCall) -> Caller:
        """What the directory knows of the caller, asked once per call (the IVR and the queue both need it); the
        call's (driver, ref) lets the database directory use the customer the calls domain matched."""
        if call.caller is None:
            call.caller = self.directory.caller(call.tenant_id, call.ani, (self.driver.name, call.ref))
        return call.caller

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
        caller = self._caller(call)
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
        partners = [name for name in engine.ringing(call.engine_ref) if name != agent]
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
        if call.unattended is not None and stage in ("dialing", "connecting", "message", "dropping"):
            self._unattended_ended(call, stage, event.cause)
        elif stage in ("dialing", "ringing") and call.outbound is not None:  # an agent's outbound call, not connected
            self._outbound_leg_failed(call, stage, event.cause)
        elif stage in ("waiting", "ringing") and call.engine_ref == call.ref:
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
            wrap = wrap if call.wrap_up_s is None else call.wrap_up_s
            self._agent_changed(call.tenant_id, call.agent, queue=call.queue, call_ref=call.ref)
            self._calls[call.ref] = call  # kept until the wrap-up is over
            call.stage = "wrap_up"
            generation = call.generation
            self.clock.call_later(wrap, lambda: self._run(lambda: self._wrap_up_done(call, generation)))

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
