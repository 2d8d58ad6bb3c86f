"""Connects a telephony driver to the calls domain: each driver event is applied in its own transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from kakehashi.calls import service
from kakehashi.kit.db import unit_of_work
from kakehashi.telephony.port import DriverEvent, TelephonyDriver


class CallEventSink:
    """Subscribe with ``CallEventSink.attach(driver, factory)``; events of one call are applied in order."""

    def __init__(self, factory: sessionmaker[Session], driver_name: str) -> None:
        self.factory = factory
        self.driver_name = driver_name

    def __call__(self, event: DriverEvent) -> None:
        with unit_of_work(self.factory) as session:
            service.apply_event(session, event, driver=self.driver_name)

    @classmethod
    def attach(cls, driver: TelephonyDriver, factory: sessionmaker[Session]) -> CallEventSink:
        sink = cls(factory, driver.name)
        driver.subscribe(sink)
        return sink
