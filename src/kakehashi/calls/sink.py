"""Connects a telephony driver to the calls domain: each driver event is applied in its own transaction."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.calls import service
from kakehashi.kit.db import unit_of_work
from kakehashi.telephony.port import DriverEvent, Offered, TelephonyDriver

log = logging.getLogger(__name__)


class CallEventSink:
    """Subscribe with ``CallEventSink.attach(driver, factory)``; events of one call are applied in order."""

    #: How many offered calls' matches are kept for the routing layer (the oldest are forgotten first).
    MATCHES_KEPT = 10_000

    def __init__(self, factory: sessionmaker[Session], driver_name: str) -> None:
        self.factory = factory
        self.driver_name = driver_name
        self._matched: OrderedDict[str, tuple[int | None, str | None]] = OrderedDict()
        self._matched_lock = threading.Lock()

    def matched_caller(self, driver: str, ref: str) -> tuple[int | None, str | None] | None:
        """(customer id, caller's E.164) as matched when this sink stored the call's offer — in memory, so the
        routing layer neither parses the number nor reads the call again; None when not known here."""
        if driver != self.driver_name:
            return None
        with self._matched_lock:
            return self._matched.get(ref)

    #: Pauses before applying an event again after a transient database error (a lock or a pool that stayed
    #: busy, a connection lost): a call event is retried, not dropped — it is the only record of the call.
    RETRY_PAUSES_S = (0.2, 1.0, 3.0)

    def __call__(self, event: DriverEvent) -> None:
        for pause in (*self.RETRY_PAUSES_S, None):
            try:
                with unit_of_work(self.factory) as session:
                    call = service.apply_event(session, event, driver=self.driver_name)
                    match = (call.customer_id, call.ani_e164) if call is not None else None
                if isinstance(event, Offered) and match is not None:
                    self._remember(event.call_ref, match)  # committed: the routing layer may rely on it
                return
            except (OperationalError, PoolTimeout) as exc:  # rolled back whole: applying it again is safe
                if pause is None:
                    raise
                log.warning("call event %s of %s not stored (%s); again in %.1f s",
                            type(event).__name__, event.call_ref, type(exc).__name__, pause)  # fmt: skip
                time.sleep(pause)

    def _remember(self, ref: str, match: tuple[int | None, str | None]) -> None:
        with self._matched_lock:
            self._matched[ref] = match
            while len(self._matched) > self.MATCHES_KEPT:
                self._matched.popitem(last=False)

    @classmethod
    def attach(cls, driver: TelephonyDriver, factory: sessionmaker[Session]) -> CallEventSink:
        sink = cls(factory, driver.name)
        driver.subscribe(sink)
        return sink
