"""For dialer tests on the simulator: a call closed with its result ends the agent's wrap-up, as
``pipeline.start`` wires it in the app."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

from kakehashi.kit.events import Event, bus
from kakehashi.routing.controller import CallController


class HasController(Protocol):
    controller: CallController


F = TypeVar("F", bound=HasController)


@contextmanager
def closing_wrap_ups(floor: F) -> Iterator[F]:
    """While inside: ``call.ended`` with a disposition ends the agent's wrap-up on ``floor``'s controller."""

    def closed(event: Event) -> None:
        if event.payload.get("state") == "ended" and event.payload.get("disposition") is not None:
            floor.controller.wrap_up_finished(event.tenant_id, str(event.payload.get("call_ref")))

    unsubscribe = bus.subscribe("call.ended", closed)
    try:
        yield floor
    finally:
        unsubscribe()
