"""Connects a telephony driver to the calls domain: each driver event is applied in its own transaction."""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.calls import service
from kakehashi.kit.db import unit_of_work
from kakehashi.telephony.port import DriverEvent, TelephonyDriver

log = logging.getLogger(__name__)


class CallEventSink:
    """Subscribe with ``CallEventSink.attach(driver, factory)``; events of one call are applied in order."""

    def __init__(self, factory: sessionmaker[Session], driver_name: str) -> None:
        self.factory = factory
        self.driver_name = driver_name

    #: Pauses before applying an event again after a transient database error (a lock or a pool that stayed
    #: busy, a connection lost): a call event is retried, not dropped — it is the only record of the call.
    RETRY_PAUSES_S = (0.2, 1.0, 3.0)

    def __call__(self, event: DriverEvent) -> None:
        for pause in (*self.RETRY_PAUSES_S, None):
            try:
                with unit_of_work(self.factory) as session:
                    service.apply_event(session, event, driver=self.driver_name)
                return
            except (OperationalError, PoolTimeout) as exc:  # rolled back whole: applying it again is safe
                if pause is None:
                    raise
                log.warning("call event %s of %s not stored (%s); again in %.1f s",
                            type(event).__name__, event.call_ref, type(exc).__name__, pause)  # fmt: skip
                time.sleep(pause)

    @classmethod
    def attach(cls, driver: TelephonyDriver, factory: sessionmaker[Session]) -> CallEventSink:
        sink = cls(factory, driver.name)
        driver.subscribe(sink)
        return sink
