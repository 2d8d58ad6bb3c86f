"""Calls placed with no agent held (predictive dialing, issue 19): the dialer places more calls than it has free
agents; a person who answers goes to the first free agent of the campaign's pool, within ``connect_within_s``
(2 s: FCC 47 CFR 64.1200(a)(7)); with nobody free by then the call is *abandoned*: the person hears the
campaign's identification message and we hang up. A detected answering machine is dropped, left a message, or
passed to an agent, as the campaign says.

The results go to the listener as for an agent's outbound call (``outbound_dialed`` with no agent,
``outbound_result`` with the agent who took it): ``answered``, ``machine``, ``abandoned`` or why the line failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kakehashi.routing.control_base import ControllerBase
from kakehashi.routing.engine import AgentState
from kakehashi.routing.live_types import LiveCall, Unattended
from kakehashi.routing.outbound import LINE_RESULTS
from kakehashi.telephony.port import EndCause

#: After the abandon or machine message, we hang up this long after the driver says the audio is played.
MESSAGE_TAIL_S = 0.5


class UnattendedCalls(ControllerBase):
    """Predictive calls: :meth:`dial_unattended`; answers, waits and ends follow from driver events."""

    def dial_unattended(
        self,
        tenant_id: int,
        number: str,
        *,
        caller_id: str,
        ring_timeout_s: float,
        wrap_up_s: float,
        tag: Mapping[str, Any],
        how: Unattended,
        amd: Mapping[str, Any] | None = None,
    ) -> str:
        """Dial ``number`` for nobody yet (``how`` says who may take it). Returns the call's reference."""

        def work() -> str:
            ref = self.driver.originate(number, caller_id=caller_id, tenant_id=tenant_id, amd=amd)
            call = LiveCall(tenant_id, ref, number, stage="dialing", engine_ref=ref, unattended=how)
            call.outbound, call.wrap_up_s = dict(tag), wrap_up_s
            self._calls[ref] = call
            self.listener.outbound_dialed(tenant_id, ref, "", call.outbound, self.clock.now())
            generation = call.generation
            ring_out = lambda: self._unattended_ring_out(call, generation)  # noqa: E731
            self.clock.call_later(ring_timeout_s, lambda: self._run(ring_out))
            return ref

        return self._command(work)

    def unattended_counts(self, tenant_id: int, key: str, value: Any) -> tuple[int, int]:
        """Calls of one requester (``tag[key] == value``): (ringing, answered and waiting for an agent)."""
        with self._lock:
            ringing = waiting = 0
            for call in self._calls.values():
                if call.unattended is None or call.tenant_id != tenant_id or call.outbound is None:
                    continue
                if call.outbound.get(key) != value:
                    continue
                if call.stage == "dialing":
                    ringing += 1
                elif call.stage == "connecting":
                    waiting += 1
            return ringing, waiting

    # -- driver events (under the lock) ------------------------------------------------------------------------

    def _unattended_answered(self, call: LiveCall, amd: str | None) -> None:
        how = call.unattended
        assert how is not None and call.outbound is not None
        call.generation += 1
        if amd == "machine" and how.amd_action != "agent":
            call.stage = "message" if how.amd_action == "message" and how.machine_prompt else "dropping"
            self._report(call, "", "machine")
            if call.stage == "message":
                assert how.machine_prompt is not None
                self._play_then_hang_up(call, how.machine_prompt)
            else:
                self.driver.hangup(call.ref)
            return
        call.stage = "connecting"
        if not self._connect(call):
            generation = call.generation
            self.clock.call_later(how.connect_within_s, lambda: self._run(lambda: self._nobody_came(call, generation)))

    def _connect(self, call: LiveCall) -> bool:
        """The first free agent of the pool takes the call (their phone rings); False: nobody is free."""
        how = call.unattended
        assert how is not None
        engine = self.engine(call.tenant_id)
        for agent in how.pool():
            if engine.has_agent(agent) and engine.agent(agent).state is AgentState.AVAILABLE:
                engine.reserve(agent, call.ref, None, self._secs())
                call.agent = agent
                self._agent_changed(call.tenant_id, agent, call_ref=call.ref)
                self._outbound_answered(call)  # reports "answered" with the agent, rings them, the pick-up timer
                return True
        return False

    def _nobody_came(self, call: LiveCall, generation: int) -> None:
        if call.generation != generation or call.stage != "connecting":
            return
        how = call.unattended
        assert how is not None
        call.generation += 1
        self._report(call, "", "abandoned")
        if how.abandon_prompt:
            call.stage = "message"
            self._play_then_hang_up(call, how.abandon_prompt)
        else:
            call.stage = "dropping"
            self.driver.hangup(call.ref)

    def _play_then_hang_up(self, call: LiveCall, prompt: str) -> None:
        self.driver.play(call.ref, prompt)
        generation = call.generation
        wait = self.driver.audio_queued_s(call.ref) + MESSAGE_TAIL_S

        def hang_up() -> None:
            if call.generation == generation and call.stage == "message":
                self.driver.hangup(call.ref)

        self.clock.call_later(wait, lambda: self._run(hang_up))

    def _unattended_ring_out(self, call: LiveCall, generation: int) -> None:
        if call.generation == generation and call.stage == "dialing":
            call.timed_out = True
            self.driver.hangup(call.ref)

    def _unattended_ended(self, call: LiveCall, stage: str, cause: EndCause) -> None:
        """The call ended before an agent took it."""
        if stage == "dialing":
            self._report(call, "", "no_answer" if call.timed_out else LINE_RESULTS.get(cause, "failed"))
        elif stage == "connecting":  # the person hung up while nobody was free: abandoned all the same
            self._report(call, "", "abandoned")
        # "message" and "dropping": reported when the decision was made

    def _unattended_agent_free(self, tenant_id: int, agent: str) -> None:
        """An agent is available: the longest-waiting answered call whose pool has them is theirs."""
        waiting = [c for c in self._calls.values()
                   if c.stage == "connecting" and c.tenant_id == tenant_id and c.unattended is not None]  # fmt: skip
        for call in waiting:
            assert call.unattended is not None
            if agent in call.unattended.pool():
                self._connect(call)
                return

    def _agent_changed(
        self, tenant_id: int, agent: str, *, queue: str | None = None, call_ref: str | None = None
    ) -> None:
        super()._agent_changed(tenant_id, agent, queue=queue, call_ref=call_ref)
        if self.engine(tenant_id).agent(agent).state is AgentState.AVAILABLE and any(
            c.stage == "connecting" for c in self._calls.values()
        ):
            # After the work in hand (an inbound dispatch may be choosing this agent right now).
            self.clock.call_later(0, lambda: self._run(lambda: self._unattended_agent_free(tenant_id, agent)))

    def _report(self, call: LiveCall, agent: str, result: str) -> None:
        assert call.outbound is not None
        self.listener.outbound_result(call.tenant_id, call.ref, agent, call.outbound, result, self.clock.now())
