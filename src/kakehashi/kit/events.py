"""In-process event bus. Events leave a unit of work only after it commits.

The transport is one seam (:class:`Transport`): in-process by default; a Redis or NATS
transport can replace it for several nodes without touching publishers or subscribers.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from kakehashi.kit.db import on_commit, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened: ``name`` is ``domain.verb`` (``customer.created``)."""

    name: str
    tenant_id: int
    payload: dict[str, Any]
    occurred_at: datetime = field(default_factory=utcnow)


Handler = Callable[[Event], None]


class Transport(Protocol):
    def send(self, event: Event) -> None: ...


class EventBus:
    """Subscribers register a name pattern (``customer.*``); handlers must not raise."""

    def __init__(self) -> None:
        self._subs: list[tuple[str, Handler]] = []
        self._lock = threading.Lock()

    def subscribe(self, pattern: str, handler: Handler) -> Callable[[], None]:
        with self._lock:
            self._subs.append((pattern, handler))

        def unsubscribe() -> None:
            with self._lock:
                self._subs.remove((pattern, handler))

        return unsubscribe

    def send(self, event: Event) -> None:
        with self._lock:
            subs = list(self._subs)
        for pattern, handler in subs:
            if fnmatch.fnmatchcase(event.name, pattern):
                try:
                    handler(event)
                except Exception:  # one broken subscriber must not stop the others
                    log.exception("event handler failed for %s", event.name)


bus = EventBus()


def publish_on_commit(session: Session, event: Event, transport: Transport | None = None) -> None:
    """Send ``event`` when the session commits; never if it rolls back."""
    target = transport or bus
    on_commit(session, lambda: target.send(event))
