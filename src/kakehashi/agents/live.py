"""The agents API's view of live routing: who decides agent states while a phone system runs.

A port, not an import of the call controller: the wiring (``kakehashi.pipeline``) puts the running pipeline on
``app.state.telephony``; its ``agent_states`` answers this protocol (``routing.live.LiveAgentStates``). With no
pipeline the agents domain records state choices itself."""

from __future__ import annotations

from typing import Protocol

from fastapi import Request

from kakehashi.kit.errors import Conflict


class LiveAgentStates(Protocol):
    """Agent states as the running call controller keeps them; refusals are ``Conflict`` (409)."""

    def choose_state(self, tenant_id: int, agent: str, state: str, reason: str | None = None) -> str:
        """Apply an agent's choice (after a call's wrap-up when busy); the state now."""
        ...

    def finish_handoff(self, tenant_id: int, agent: str) -> None:
        """End the wrap-up of an agent who transferred their call."""
        ...


def live_agent_states(request: Request) -> LiveAgentStates | None:
    """The running pipeline's agent states, or None when no phone system runs."""
    pipeline = request.app.state.telephony
    return None if pipeline is None else pipeline.agent_states


def required_live_agent_states(request: Request) -> LiveAgentStates:
    """As :func:`live_agent_states`, for commands that need a phone system (409 without one)."""
    live = live_agent_states(request)
    if live is None:
        raise Conflict("no telephony is running: calls cannot be controlled")
    return live
