"""Starting and stopping the configured telephony driver with the app."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from kakehashi.calls import service as calls
from kakehashi.calls.sink import CallEventSink
from kakehashi.kit.db import unit_of_work, utcnow
from kakehashi.telephony.drivers.sim.clock import RealTimeClock
from kakehashi.telephony.drivers.sim.driver import SimDriver
from kakehashi.telephony.port import TelephonyDriver


def start(name: str, factory: sessionmaker[Session]) -> TelephonyDriver | None:
    """Build the driver, connect its events to the calls domain, and reconcile calls left by a previous
    process: those the driver no longer has are ended and get their CDR (ADR 0010)."""
    if name == "none":
        return None
    driver = SimDriver(RealTimeClock())
    CallEventSink.attach(driver, factory)
    with unit_of_work(factory) as session:
        calls.recover(session, driver.name, driver.live_calls(), utcnow())
    return driver


def stop(driver: TelephonyDriver | None) -> None:
    if isinstance(driver, SimDriver) and isinstance(driver.clock, RealTimeClock):
        driver.clock.close()
