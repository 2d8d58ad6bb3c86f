"""The running call pipeline as routes and services see it: the driver and the call controller on top of it.

``kakehashi.pipeline`` (the wiring beside ``app.py``) builds a :class:`LivePipeline` at start-up and puts it on
``app.state.telephony`` (None when no phone system runs). Routes reach it through :func:`running` and the helpers
here, never by importing the wiring."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from kakehashi.kit.errors import Conflict
from kakehashi.routing.controller import CallController
from kakehashi.routing.engine import AgentState, AgentStateError
from kakehashi.routing.live_types import CallControlError
from kakehashi.telephony.port import TelephonyDriver


@dataclass(frozen=True)
class LiveAgentStates:
    """The controller as the agents API uses it (``agents.live.LiveAgentStates``): states as strings, refusals
    as domain errors."""

    controller: CallController

    def choose_state(self, tenant_id: int, agent: str, state: str, reason: str | None = None) -> str:
        try:
            return self.controller.choose_state(tenant_id, agent, AgentState(state), reason).value
        except AgentStateError as exc:
            raise Conflict(str(exc)) from None

    def finish_handoff(self, tenant_id: int, agent: str) -> None:
        with refused_as_conflict():
            self.controller.finish_handoff(tenant_id, agent)


@dataclass
class LivePipeline:
    """A running phone system: its driver, the call controller, and the bus subscriptions to undo at stop."""

    driver: TelephonyDriver
    controller: CallController
    unsubscribe: list[Callable[[], Any]] = field(default_factory=list)
    #: The campaign dialer on this controller (``kakehashi.dialer``; ``campaigns.live.LiveDialer`` for routes).
    dialer: Any = None

    @property
    def agent_states(self) -> LiveAgentStates:
        """Who decides agent states while this pipeline runs."""
        return LiveAgentStates(self.controller)


def running(request: Request) -> LivePipeline | None:
    """The app's running pipeline, or None (``KAKEHASHI_TELEPHONY_DRIVER=none``)."""
    pipeline: LivePipeline | None = request.app.state.telephony
    return pipeline


def call_control(pipeline: LivePipeline | None) -> CallController:
    """The controller that carries out the desktop's call commands (409 when no phone system runs)."""
    if pipeline is None:
        raise Conflict("no telephony is running: calls cannot be controlled")
    return pipeline.controller


@contextmanager
def refused_as_conflict() -> Iterator[None]:
    """A command that does not fit the call now is a 409 with the controller's reason."""
    try:
        yield
    except CallControlError as exc:
        raise Conflict(str(exc)) from None
