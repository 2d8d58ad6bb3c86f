"""Outbound calls for an agent (ADR 0023): the agent is held for the call, the number is dialled, and when a
person answers the agent's phone rings; the line's result goes back to whoever asked for the call.

This is the controller's side of campaign dialing (preview and progressive) and of an agent's manual dial. It
knows nothing of campaigns: the caller passes an opaque ``tag`` that comes back in the listener's reports
(:meth:`RoutingListener.outbound_dialed`, :meth:`RoutingListener.outbound_result`).

Results of the line: ``answered`` (a person: the agent is rung), ``busy``, ``no_answer`` (the driver's time-out or
the call's own ring time-out), ``machine`` (an answering machine the driver detected), ``invalid``, ``failed``, and
``abandoned`` — the person answered but hung up, or was hung up on, before the agent was connected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kakehashi.routing.control_base import ControllerBase
from kakehashi.routing.engine import AgentState
from kakehashi.routing.live_types import CallControlError, LiveCall
from kakehashi.telephony.port import EndCause

#: How long the agent's phone may ring once the person answered; after it the person has waited in silence too
#: long: the call ends as abandoned (a drop, which the predictive pacing of issue 19 keeps under its bound).
AGENT_PICKUP_S = 15.0
#: Driver end causes → the line's result.
LINE_RESULTS = {
    EndCause.BUSY: "busy",
    EndCause.NO_ANSWER: "no_answer",
    EndCause.ANSWERING_MACHINE: "machine",
    EndCause.INVALID_NUMBER: "invalid",
}


class OutboundCalls(ControllerBase):
    """Dialing for an agent: :meth:`dial_for_agent`; the rest follows from driver events."""

    def dial_for_agent(
        self,
        tenant_id: int,
        agent: str,
        number: str,
        *,
        caller_id: str,
        ring_timeout_s: float,
        wrap_up_s: float,
        tag: Mapping[str, Any],
    ) -> str:
        """Hold ``agent`` (they must be available) and dial ``number`` showing ``caller_id``. Returns the
        call's reference. ``ring_timeout_s``: unanswered this long, the call ends as no answer; ``wrap_up_s``:
        the agent's wrap-up after talking (ended early when they save the result)."""

        def work() -> str:
            engine = self.engine(tenant_id)
            if not engine.has_agent(agent):
                raise CallControlError(f"{agent} is not logged in to take calls")
            rec = engine.agent(agent)
            if rec.state is not AgentState.AVAILABLE:
                raise CallControlError(f"{agent} is {rec.state.value}, not available")
            ref = self.driver.originate(number, caller_id=caller_id, tenant_id=tenant_id)
            engine.reserve(agent, ref, None, self._secs())
            call = LiveCall(tenant_id, ref, number, stage="dialing", agent=agent, engine_ref=ref)
            call.outbound, call.wrap_up_s = dict(tag), wrap_up_s
            self._calls[ref] = call
            self._agent_changed(tenant_id, agent, call_ref=ref)
            self.listener.outbound_dialed(tenant_id, ref, agent, call.outbound, self.clock.now())
            generation = call.generation
            self.clock.call_later(ring_timeout_s, lambda: self._run(lambda: self._ring_timed_out(call, generation)))
            return ref

        return self._command(work)

    def _ring_timed_out(self, call: LiveCall, generation: int) -> None:
        if call.generation == generation and call.stage == "dialing":
            call.timed_out = True
            self.driver.hangup(call.ref)

    def _outbound_answered(self, call: LiveCall) -> None:
        """A person answered: the held agent's phone rings (their card is up already)."""
        assert call.agent is not None and call.outbound is not None
        call.stage = "ringing"
        call.generation += 1
        self.listener.outbound_result(call.tenant_id, call.ref, call.agent, call.outbound, "answered", self.clock.now())
        self.driver.route_to_agent(call.ref, call.agent)
        generation = call.generation
        self.clock.call_later(AGENT_PICKUP_S, lambda: self._run(lambda: self._pickup_timed_out(call, generation)))

    def _pickup_timed_out(self, call: LiveCall, generation: int) -> None:
        if call.generation == generation and call.stage == "ringing":
            call.timed_out = True
            self.driver.hangup(call.ref)

    def _outbound_leg_failed(self, call: LiveCall, stage: str, cause: EndCause) -> None:
        """The call ended before the agent was connected: the agent is free again and the result reported."""
        assert call.agent is not None and call.outbound is not None
        engine = self.engine(call.tenant_id)
        agents, assignments = engine.ring_ended(call.engine_ref, self._secs(), missed=False)
        if stage == "dialing":
            result = "no_answer" if call.timed_out else LINE_RESULTS.get(cause, "failed")
        else:  # the person answered and hung up (or was hung up on) before the agent came
            result = "abandoned"
        self.listener.outbound_result(call.tenant_id, call.ref, call.agent, call.outbound, result, self.clock.now())
        for agent in agents:
            self._agent_changed(call.tenant_id, agent)
        self._dispatch(call.tenant_id, assignments)
