"""The running dialer as the campaigns' routes see it (``kakehashi.dialer.Dialer`` implements it), reached
through ``app.state.telephony`` like the call controller (``routing.live``), never by importing the wiring."""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import Request

from kakehashi.kit.context import Actor
from kakehashi.kit.errors import Conflict
from kakehashi.routing.live import running


class LiveDialer(Protocol):
    def join(self, actor: Actor, agent: str, campaign_id: int) -> None: ...
    def leave(self, actor: Actor, agent: str) -> None: ...
    def joined(self, tenant_id: int, agent: str) -> int | None: ...
    def dial(self, actor: Actor, agent: str, attempt_id: int) -> str: ...
    def dial_manual(self, actor: Actor, agent: str, number: str, campaign_id: int | None) -> str: ...
    def pacing(self, tenant_id: int) -> list[dict[str, Any]]: ...


def dialer(request: Request) -> LiveDialer:
    """The app's dialer (409 when no phone system runs)."""
    pipeline = running(request)
    if pipeline is None or pipeline.dialer is None:
        raise Conflict("no telephony is running: nothing can be dialled")
    found: LiveDialer = pipeline.dialer
    return found


def pacing(request: Request, tenant_id: int) -> list[dict[str, Any]]:
    """The tenant's predictive campaigns being paced now (``LiveDialer.pacing``); none when no phone system or no
    dialer runs (the wallboard asks whatever runs: never a 409)."""
    pipeline = running(request)
    if pipeline is None or pipeline.dialer is None:
        return []
    found: LiveDialer = pipeline.dialer
    return found.pacing(tenant_id)


def driver_name(request: Request) -> str:
    """The running driver's name (call references are unique per driver); empty when none runs."""
    pipeline = running(request)
    return pipeline.driver.name if pipeline is not None else ""
