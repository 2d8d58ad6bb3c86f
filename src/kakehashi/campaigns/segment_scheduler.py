"""The running app's check of scheduled segments: once a minute, on a clock thread of its own (``kit.timers``), it
runs :func:`campaigns.segments.run_due_segments`, then frees the leads whose reservation outlived its agent
(:func:`campaigns.compliance.release_stale_everywhere`). Web requests and calls never wait for it (they run on other
threads; each due segment is one short transaction of its own)."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from kakehashi.campaigns.compliance import release_stale_everywhere
from kakehashi.campaigns.segments import run_due_segments
from kakehashi.kit.timers import RealTimeClock, VirtualClock

log = logging.getLogger(__name__)

#: Seconds between two checks (a schedule names a minute).
PERIOD_S = 60.0


class SegmentScheduler:
    """Checks for due segments every ``period`` seconds on ``clock`` until :meth:`stop`."""

    def __init__(self, factory: sessionmaker[Session], clock: VirtualClock, period: float = PERIOD_S) -> None:
        self._factory = factory
        self._clock = clock
        self._period = period
        self._stopped = threading.Event()
        self.runs = 0

    @classmethod
    def start(cls, factory: sessionmaker[Session], period: float = PERIOD_S) -> SegmentScheduler:
        """A scheduler on a real-time clock thread of its own, first check after ``period`` seconds."""
        scheduler = cls(factory, RealTimeClock(), period)
        scheduler.schedule()
        return scheduler

    def schedule(self) -> None:
        if not self._stopped.is_set():
            self._clock.call_later(self._period, self.tick)

    def tick(self) -> None:
        """One check: run what is due now, then schedule the next check (also after a failure)."""
        if self._stopped.is_set():
            return
        try:
            for run in run_due_segments(self._factory, self._clock.now()):
                self.runs += 1
                log.info(
                    "segment %s ran: %s", run.segment_id, run.error or f"{run.report.added if run.report else 0} added"
                )
        except Exception:  # a database hiccup must not end the checks
            log.exception("checking the scheduled segments failed; next check in %s s", self._period)
        try:  # leads reserved and never finished (an agent closed the browser) go back (compliance.py)
            if freed := release_stale_everywhere(self._factory, self._clock.now()):
                log.info("freed %s stale lead reservations", freed)
        except Exception:
            log.exception("freeing stale lead reservations failed; next check in %s s", self._period)
        finally:
            self.schedule()

    def stop(self) -> None:
        self._stopped.set()
        if isinstance(self._clock, RealTimeClock):
            self._clock.close()
