"""The FastAPI application. Engines are built in the lifespan, never at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kakehashi import __version__
from kakehashi import pipeline as telephony
from kakehashi.agents.api import router as agents_router
from kakehashi.analytics.api import router as analytics_router
from kakehashi.audit.api import record_refusal
from kakehashi.audit.api import router as audit_router
from kakehashi.auth.api import router as auth_router
from kakehashi.auth.guard import PUBLIC, check_routes
from kakehashi.auth.login import LoginFloodMiddleware
from kakehashi.billing.api import router as billing_router
from kakehashi.calls.api import router as calls_router
from kakehashi.campaigns.api import router as campaigns_router
from kakehashi.campaigns.compliance_api import router as campaign_compliance_router
from kakehashi.campaigns.desk_api import router as outbound_desk_router
from kakehashi.campaigns.lists_api import MAX_UPLOAD_BYTES as LIST_UPLOAD_BYTES
from kakehashi.campaigns.lists_api import router as campaign_lists_router
from kakehashi.campaigns.results_api import router as campaign_results_router
from kakehashi.campaigns.segment_scheduler import SegmentScheduler
from kakehashi.campaigns.segments_api import router as segments_router
from kakehashi.complaints.api import router as complaints_router
from kakehashi.contacts.api import router as contacts_router
from kakehashi.customers.api import router as customers_router
from kakehashi.dispositions.api import router as dispositions_router
from kakehashi.ivr.api import router as ivr_router
from kakehashi.kit.api import install_problem_handlers
from kakehashi.kit.body import BodyGuardMiddleware
from kakehashi.kit.config import Settings, get_settings
from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work
from kakehashi.kit.headers import SecurityHeadersMiddleware
from kakehashi.orders.api import router as orders_router
from kakehashi.postal.api import router as postal_router
from kakehashi.privacy.api import router as privacy_router
from kakehashi.routing.api import router as routing_router
from kakehashi.routing.control_api import router as call_control_router
from kakehashi.screenpop.api import router as screenpop_router
from kakehashi.staffing.api import router as staffing_router
from kakehashi.stream.api import router as stream_router
from kakehashi.telephony.api import router as telephony_router
from kakehashi.tenants import service as tenants
from kakehashi.tenants.api import router as tenants_router
from kakehashi.web.apidocs import router as apidocs_router
from kakehashi.web.pages import STATIC_DIR
from kakehashi.web.pages import router as web_router
from kakehashi.web.pages.campaign_results import router as campaign_results_page_router
from kakehashi.web.wallboard import router as wallboard_router

if TYPE_CHECKING:
    from kakehashi.demo.traffic import DemoTraffic

#: Path prefixes whose routes take a larger request body than ``KAKEHASHI_MAX_BODY_BYTES`` (bytes; the longest
#: matching prefix wins; a ``*`` segment matches any one segment: an id), for list uploads. kit/body.py.
BODY_LIMITS: dict[str, int] = {"/api/v1/campaigns/*/lists": LIST_UPLOAD_BYTES}


def ensure_default_tenant(factory: sessionmaker[Session], code: str) -> int:
    with unit_of_work(factory) as session:
        return tenants.ensure(session, code).id


def start_demo_traffic(state: Any, settings: Settings, factory: sessionmaker[Session]) -> DemoTraffic | None:
    """Simulated customers and agents in the default tenant (``kakehashi.demo.traffic``), when switched on: the
    demo wing is imported only then."""
    if settings.demo_traffic_per_hour <= 0:
        return None
    from kakehashi.demo import traffic

    return traffic.start(state.telephony, factory, state.default_tenant_id, settings.demo_traffic_per_hour)


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    session_factory: sessionmaker[Session] | None = None,
) -> FastAPI:
    """Build the app; tests pass their own engine/session factory (e.g. bound to a rolled-back transaction)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Several test clients may run the lifespan of one app at once: the first starts the services, the
        # others share them, the last one out stops them (a second telephony would leak its subscriptions).
        app.state.lifespans = getattr(app.state, "lifespans", 0) + 1
        own_engine = None
        if app.state.lifespans == 1:
            if session_factory is None:
                own_engine = engine or make_engine(settings.effective_database_url, echo=settings.sql_echo)
                app.state.session_factory = make_session_factory(own_engine)
            else:
                app.state.session_factory = session_factory
            app.state.settings = settings
            app.state.after_rollback = [record_refusal]
            # The call pipeline's own connections (PostgreSQL): web traffic cannot starve it (ADR 0018).
            calls_factory, app.state.calls_engine = telephony.pipeline_database(own_engine, app.state.session_factory)
            app.state.telephony = telephony.start(settings, calls_factory)
            app.state.default_tenant_id = ensure_default_tenant(app.state.session_factory, settings.default_tenant)
            app.state.demo_traffic = start_demo_traffic(app.state, settings, calls_factory)
            # Scheduled segments, checked every minute on a thread of their own; not with a caller's session
            # factory (tests: one connection, run_due_segments is called with their clock instead).
            app.state.segment_scheduler = (
                SegmentScheduler.start(app.state.session_factory) if session_factory is None else None
            )
            app.state.own_engine = own_engine
        try:
            yield
        finally:
            app.state.lifespans -= 1
            if app.state.lifespans == 0:
                if app.state.demo_traffic is not None:
                    app.state.demo_traffic.stop()  # before the driver's clock stops
                if app.state.segment_scheduler is not None:
                    app.state.segment_scheduler.stop()
                telephony.stop(app.state.telephony)
                if app.state.calls_engine is not None:
                    app.state.calls_engine.dispose()
                if app.state.own_engine is not None and engine is None:
                    app.state.own_engine.dispose()

    app = FastAPI(
        title="Kakehashi",
        version=__version__,
        description="CTI contact-center platform: customer master, screen pop, routing, campaigns.",
        lifespan=lifespan,
        # Served by web/apidocs.py behind a login, with local assets (FastAPI's own are public and load a CDN).
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    install_problem_handlers(app)
    app.add_middleware(LoginFloodMiddleware)  # a spent address's logins: 429 before routing (ADR 0018)
    app.add_middleware(BodyGuardMiddleware, max_bytes=settings.max_body_bytes, limits=BODY_LIMITS)
    app.add_middleware(SecurityHeadersMiddleware, cacheable=("/static/",))  # outermost: also on the 413s
    for router in (
        auth_router,
        tenants_router,
        audit_router,
        screenpop_router,
        stream_router,
        call_control_router,  # before calls_router: /calls/live is not a call id
        calls_router,
        dispositions_router,
        billing_router,
        staffing_router,
        ivr_router,
        agents_router,
        telephony_router,
        routing_router,
        customers_router,
        campaign_results_router,  # before campaigns_router: /campaigns/results is not an id
        campaign_compliance_router,  # before campaigns_router: /campaigns/dnc.csv is not an id
        segments_router,  # before campaigns_router: /campaigns/segments is not a campaign id
        campaigns_router,
        campaign_lists_router,
        outbound_desk_router,
        orders_router,
        complaints_router,
        contacts_router,
        postal_router,
        privacy_router,
        analytics_router,
        web_router,
        wallboard_router,
        campaign_results_page_router,
    ):
        app.include_router(router)
    if settings.api_docs:
        app.include_router(apidocs_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", tags=["ops"], dependencies=[PUBLIC])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    check_routes(app)
    return app
