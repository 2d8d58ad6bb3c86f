"""The call pipeline's assembly, beside ``app.py``: the configured telephony driver, the calls domain's sink and
the call controller on top of it, started and stopped with the app.

This is the one module that wires ``telephony`` (a driver), ``calls`` (the sink, recovery) and ``routing`` (the
controller, its directory and listener) together, with the campaign dialer on top (``kakehashi.dialer``); routes
reach what it starts through ``app.state.telephony``
(``routing.live.LivePipeline``), never by importing it. At start-up it also puts back what the database says:
calls the driver no longer has end (``calls.recover``), pending callbacks return to their queues
(:func:`reload_callbacks`), agents and calls left in wrap-up come back (:func:`restore_floor`). On PostgreSQL the
pipeline has a connection pool of its own (:func:`pipeline_database`, ADR 0018)."""

from __future__ import annotations

import logging
import secrets
from contextlib import suppress
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.calls import service as calls
from kakehashi.calls.sink import CallEventSink
from kakehashi.dialer import DialerListener
from kakehashi.dialer import attach as attach_dialer
from kakehashi.kit.config import Settings
from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work, utcnow
from kakehashi.kit.events import Event, bus
from kakehashi.kit.phone import try_normalize_phone
from kakehashi.kit.timers import RealTimeClock
from kakehashi.routing import service as routing
from kakehashi.routing.controller import CallController, Clock
from kakehashi.routing.live import LivePipeline
from kakehashi.routing.persist import DbDirectory
from kakehashi.telephony.drivers.sim.driver import SimDriver
from kakehashi.telephony.port import TelephonyDriver
from kakehashi.tenants.service import all_tenants

if TYPE_CHECKING:
    from kakehashi.telephony.drivers.sip.driver import SipOptions

log = logging.getLogger(__name__)


#: The call pipeline's own pool on PostgreSQL (pool_size, max_overflow): its writers are the driver's event
#: thread, the controller's listener and the SIP driver's lookups — a handful at a time.
PIPELINE_POOL = (4, 8)


def pipeline_database(
    web_engine: Engine | None, web_factory: sessionmaker[Session]
) -> tuple[sessionmaker[Session], Engine | None]:
    """The call pipeline's database access, apart from web requests' (ADR 0018). On PostgreSQL an engine with a
    pool of its own: however many connections web traffic takes, a call event never waits for one (nor times
    out and is lost). On SQLite the web's engine: its writer lock is the one for the whole process, and web
    requests hold it only briefly (no password is hashed inside a transaction). Returns the factory and the
    engine to dispose of (None when shared)."""
    if web_engine is None or web_engine.dialect.name != "postgresql":
        return web_factory, None
    pool_size, overflow = PIPELINE_POOL
    url = web_engine.url.render_as_string(hide_password=False)
    engine = make_engine(url, echo=bool(web_engine.echo), pool_size=pool_size, max_overflow=overflow)
    return make_session_factory(engine), engine


def start(settings: Settings, factory: sessionmaker[Session]) -> LivePipeline | None:
    """Build the driver, connect its events to the calls domain (first) and the call controller (second),
    and reconcile calls left by a previous process: those the driver no longer has are ended and get their
    CDR (ADR 0010). Pending callbacks go back into their queues at their old place."""
    if settings.telephony_driver == "none":
        return None
    driver: TelephonyDriver
    clock: Clock
    if settings.telephony_driver == "sip":
        # Imported here: the SIP driver needs the optional ``sip`` extra (numpy, Open JTalk, the worker).
        from kakehashi.telephony.drivers.sip.driver import SipDriver

        sip = SipDriver(sip_options(settings), tenant_of=lambda dnis: tenant_of_number(factory, dnis))
        driver, clock = sip, sip.clock
    else:
        # A new prefix per process: call references must not repeat those of calls a previous run recorded.
        sim = SimDriver(RealTimeClock(), prefix=f"sim-{secrets.token_hex(4)}",
                        tenant_of=lambda dnis: tenant_of_number(factory, dnis))  # fmt: skip
        driver, clock = sim, sim.clock
    sink = CallEventSink.attach(driver, factory)
    directory = DbDirectory(factory, matched=sink.matched_caller)  # the offer's match, carried forward in memory
    listener = DialerListener(factory, driver.name)
    controller = CallController(driver, clock, directory, listener).attach()
    dialer = attach_dialer(controller, driver, factory, clock, listener, trunk_lines=settings.trunk_lines)
    with unit_of_work(factory) as session:
        calls.recover(session, driver.name, driver.live_calls(), utcnow())
    reload_callbacks(controller, factory)
    restore_floor(controller, factory, driver.name)

    def config_changed(event: Event) -> None:
        controller.reload(event.tenant_id)

    def call_closed(event: Event) -> None:
        if event.payload.get("state") == "ended" and event.payload.get("disposition") is not None:
            controller.wrap_up_finished(event.tenant_id, str(event.payload.get("call_ref")))

    unsubscribe = [bus.subscribe("routing.config_changed", config_changed), bus.subscribe("call.ended", call_closed)]
    return LivePipeline(driver, controller, unsubscribe, dialer=dialer)


def sip_options(settings: Settings) -> SipOptions:
    """The SIP driver's options from the app's settings (``KAKEHASHI_SIP_*``)."""
    from kakehashi.telephony.drivers.sip.driver import SipOptions

    if settings.sip_engine == "rtpengine":  # one signalling process; rtpengine carries the audio (ADR 0024)
        spool = settings.sip_recording_spool or settings.data_dir / "rtp-recordings"
        return SipOptions(settings.sip_media_port, settings.sip_proxy, settings.data_dir,
                          no_answer_s=settings.sip_no_answer_s, workers=1, engine="rtpengine",
                          ng=settings.sip_rtpengine_ng, pcap_dir=spool, dtmf_port=settings.sip_dtmf_port)  # fmt: skip
    return SipOptions(settings.sip_media_port, settings.sip_proxy, settings.data_dir,
                      no_answer_s=settings.sip_no_answer_s, workers=settings.sip_workers,
                      calls_per_worker=settings.sip_calls_per_worker)  # fmt: skip


def tenant_of_number(factory: sessionmaker[Session], dnis: str) -> int | None:
    """Whose number was dialled (``inbound_numbers``): the SIP driver refuses calls to nobody's number."""
    e164 = try_normalize_phone(dnis)
    if e164 is None:
        return None
    with factory() as session:
        return routing.tenant_of_number(session, e164)


def reload_callbacks(controller: CallController, factory: sessionmaker[Session]) -> None:
    """Pending callbacks go back into their queues at their old place, with the caller ID they were promised;
    those whose queue is gone end as failed."""
    with factory() as session:
        pending = routing.pending_callbacks(session)
    orphans = []
    for cb in sorted(pending, key=lambda c: c.place_at):
        try:
            controller.add_callback(cb.tenant_id, f"cb-{cb.origin_call_ref}", cb.queue, cb.number_e164, cb.priority,
                                    cb.place_at, cb.attempts, cb.caller_id or "")  # fmt: skip
        except KeyError:  # its queue was deleted or renamed while the app was down
            orphans.append(cb)
    if orphans:
        with unit_of_work(factory) as session:
            for cb in orphans:
                routing.give_up_callback(session, cb.tenant_id, cb.origin_call_ref, utcnow())
        log.warning("%d pending callbacks name queues that no longer exist: marked failed", len(orphans))


def restore_floor(controller: CallController, factory: sessionmaker[Session], driver: str) -> None:
    """Every tenant's agents as the database left them (busy ones free again, recorded so), and a queue's
    calls left in wrap-up (their agent was talking or writing notes when the process stopped) holding their
    agent in wrap-up again for the queue's wrap-up time, then closing as usual (ADR 0010)."""
    with factory() as session:
        tenant_ids = [t.id for t in all_tenants(session)]
        # Only calls of a queue were the controller's; one put through by someone else (an integration)
        # waits for its agent's notes as before.
        open_wrap_ups = [(c.tenant_id, c.ref, c.agent, c.queue) for c in calls.in_wrap_up(session, driver)
                         if c.agent and c.queue]  # fmt: skip
    controller.restore(tenant_ids, open_wrap_ups)


def stop(telephony: LivePipeline | None) -> None:
    """Undo the subscriptions and stop the driver (the simulator's real-time clock, the SIP media worker)."""
    if telephony is None:
        return
    while telephony.unsubscribe:  # idempotent: a test app may run its lifespan more than once
        with suppress(ValueError):
            telephony.unsubscribe.pop()()
    driver = telephony.driver
    if isinstance(driver, SimDriver):
        if isinstance(driver.clock, RealTimeClock):
            driver.clock.close()
    else:
        driver.close()  # type: ignore[attr-defined]  # the SIP driver stops its media worker
