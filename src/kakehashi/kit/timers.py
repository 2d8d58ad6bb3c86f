"""Clocks that schedule actions: a virtual clock (hours of traffic in seconds, for benchmarks and tests) or
real time (the simulator in a demo, the SIP driver's timers). Both schedule actions on a heap; only how "now"
advances differs. In ``kit`` so that every driver can use them without importing another driver."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Action = Callable[[], None]

log = logging.getLogger(__name__)


class VirtualClock:
    """Time moves only when told to; ``advance`` runs everything due, in time order (ties: in order scheduled)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._queue: list[tuple[datetime, int, Action]] = []
        self._seq = itertools.count()
        self._lock = threading.RLock()

    def now(self) -> datetime:
        return self._now

    def call_later(self, seconds: float, action: Action) -> None:
        with self._lock:
            heapq.heappush(self._queue, (self._now + timedelta(seconds=max(0.0, seconds)), next(self._seq), action))

    def advance(self, seconds: float) -> None:
        self.run_until(self._now + timedelta(seconds=seconds))

    def run_until(self, until: datetime) -> None:
        while True:
            with self._lock:
                if not self._queue or self._queue[0][0] > until:
                    break
                when, _, action = heapq.heappop(self._queue)
                self._now = max(self._now, when)
            action()
        self._now = max(self._now, until)

    def run_all(self, limit_seconds: float = 86_400) -> None:
        """Run until nothing is scheduled (bounded, so a self-rescheduling source cannot loop forever)."""
        self.run_until(self._now + timedelta(seconds=limit_seconds))

    @property
    def pending(self) -> int:
        return len(self._queue)


class RealTimeClock(VirtualClock):
    """Wall-clock time: a background thread runs actions when they fall due (the demo's calls)."""

    def __init__(self) -> None:
        super().__init__(datetime.now(UTC))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sim-clock", daemon=True)
        self._thread.start()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def call_later(self, seconds: float, action: Action) -> None:
        with self._lock:
            due = datetime.now(UTC) + timedelta(seconds=max(0.0, seconds))
            heapq.heappush(self._queue, (due, next(self._seq), action))
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                wait = (self._queue[0][0] - datetime.now(UTC)).total_seconds() if self._queue else 1.0
            if wait > 0:
                self._wake.wait(timeout=min(wait, 1.0))
                self._wake.clear()
                continue
            with self._lock:
                _, _, action = heapq.heappop(self._queue)
            try:
                action()
            except Exception:  # one failing timer must not stop every call that runs on this clock
                log.exception("a timed action failed; the clock goes on")

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
