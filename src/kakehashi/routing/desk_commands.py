"""The agent desktop's call control (ADR 0016): answer, hold, hang up, blind and attended transfers, the
hand-off of the agent who transfers, silent monitor.

Every command runs under the controller's lock through ``_command``: it checks the call against the live state
(refused with :class:`CallControlError`, a 409 for the desk), reserves a transfer's target in the engine and
sends the driver's command; what follows comes back as driver events like any other.
"""

from __future__ import annotations

from kakehashi.routing.control_base import ControllerBase
from kakehashi.routing.engine import AgentStateError, Engine
from kakehashi.routing.live_types import (
    DEFAULT_RING_TIMEOUT_S,
    HOLD_MUSIC,
    TRANSFER_KINDS,
    TRANSFER_PRIORITY,
    CallControlError,
    LiveCall,
)


class DeskCommands(ControllerBase):
    """Commands from the desktop. ``by`` is the agent giving the command (it must be their call); None: a
    supervisor, for any call."""

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
        """Put the caller on hold (music) or take them back."""

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
            return sorted(engine.agent(agent).queues) if engine.has_agent(agent) else []

        return self._command(work)

    def can_monitor(self) -> bool:
        """Whether the phone system can listen to calls (the desk shows the command only then)."""
        return callable(getattr(self.driver, "monitor", None))

    # -- transfers, step by step ----------------------------------------------------------------------------

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
