"""A numbered, bounded journal of live events, so a client that reconnects gets what it missed.

Each event gets a process-wide increasing id. A client reconnects with ``?last_event_id=N`` and first
receives the journal's events after N (filtered for it), then live ones — each exactly once (Zulip's
event-queue idea). If N is older than what the journal still holds, the client is told to ``resync``:
fetch fresh state, then follow the stream again.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable

from kakehashi.kit.events import Event

Listener = Callable[[int, Event], None]


class Journal:
    def __init__(self, size: int = 10_000) -> None:
        self._events: deque[tuple[int, Event]] = deque(maxlen=size)
        # Ids start from the clock (µs) so they keep growing across restarts: a client holding an id from
        # before a restart is then older than the whole journal and is told to resync.
        self._ids = itertools.count(time.time_ns() // 1000)
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def append(self, event: Event) -> None:
        """Number the event and hand it to the live listeners (under the lock: ids reach them in order)."""
        with self._lock:
            entry = (next(self._ids), event)
            self._events.append(entry)
            listeners = list(self._listeners)
            for listener in listeners:
                listener(*entry)

    def follow(self, after: int | None, listener: Listener) -> tuple[list[tuple[int, Event]], bool, Callable[[], None]]:
        """Atomically: the events after ``after`` (replay), whether history is complete (False: resync),
        and start live delivery. Returns (replay, complete, stop)."""
        with self._lock:
            if after is None:
                replay, complete = [], True
            else:
                replay = [(i, e) for i, e in self._events if i > after]
                oldest = self._events[0][0] if self._events else None
                complete = oldest is None or after >= oldest - 1
            self._listeners.append(listener)

        def stop() -> None:
            with self._lock:
                self._listeners.remove(listener)

        return replay, complete, stop

    @property
    def last_id(self) -> int:
        with self._lock:
            return self._events[-1][0] if self._events else 0


_journal: Journal | None = None
_journal_lock = threading.Lock()


def journal() -> Journal:
    """The process's journal, fed by the event bus (subscribed once, on first use)."""
    global _journal
    with _journal_lock:
        if _journal is None:
            from kakehashi.kit.events import bus
            from kakehashi.stream.service import STREAMED

            _journal = Journal()
            for pattern in STREAMED:
                bus.subscribe(pattern, _journal.append)
        return _journal
