"""The demo's routing data and its live traffic: made once through the services; simulated customers call,
simulated agents answer and close their wrap-ups; the app starts and stops the traffic cleanly."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from conftest import PG_URL
from kakehashi.agents import service as agents
from kakehashi.agents.models import Agent
from kakehashi.app import create_app
from kakehashi.calls.models import Call, Cdr
from kakehashi.calls.sink import CallEventSink
from kakehashi.customers import service as customers
from kakehashi.customers.schemas import CustomerCreate, PhoneIn
from kakehashi.demo import routing as demo
from kakehashi.demo.customers import SHOWCASE_NUMBERS
from kakehashi.demo.traffic import DemoTraffic, TrafficOptions
from kakehashi.dispositions import service as dispositions
from kakehashi.dispositions.schemas import DispositionIn
from kakehashi.ivr import service as ivr
from kakehashi.ivr.calendar import is_open
from kakehashi.ivr.flow import Hours
from kakehashi.ivr.templates import ORDER_DESK_EXAMPLE, ORDER_DESK_QUEUES
from kakehashi.kit import migrate
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Actor
from kakehashi.kit.db import make_engine, make_session_factory, unit_of_work
from kakehashi.kit.dbadmin import recreate_database
from kakehashi.kit.events import Event, bus
from kakehashi.kit.timers import VirtualClock
from kakehashi.routing import service as routing
from kakehashi.routing.controller import CallController
from kakehashi.routing.persist import DbDirectory, DbListener
from kakehashi.telephony.drivers.sim.driver import SimDriver
from kakehashi.tenants import repository as tenants

# --- the routing data -------------------------------------------------------------------------------------


def test_the_demo_routing_is_made_once_through_the_services(session: Session, actor: Actor) -> None:
    first = demo.ensure(session, actor)
    assert set(first.created) == {"aux_codes", "dispositions", "agents", "queues", "flows", "numbers"}
    assert demo.ensure(session, actor).created == {}  # again: nothing new, nothing changed

    assert {c.code: c.label for c in agents.aux_codes(session, actor)} == demo.AUX_CODES
    results = dispositions.list_dispositions(session, actor)
    assert [(d.code, d.label_en, d.kind) for d in results] == list(demo.DISPOSITIONS)
    dispositions.replace_dispositions(session, actor, [DispositionIn(code="成約", kind="sale")])
    assert demo.ensure(session, actor).created == {}  # the center's own list stays
    names = {a.name: a.display_name for a in agents.list_agents(session, actor)}
    assert len(names) == 12 and names["operator"] == "佐藤 オペレーター"
    assert "operator" not in demo.SIMULATED_AGENTS and len(demo.SIMULATED_AGENTS) == 11
    queues = {q.name: q for q in routing.list_queues(session, actor)}
    assert set(queues) >= ORDER_DESK_QUEUES  # every queue the example flow names
    assert queues["vip"].rank_priority == {"vip": 20, "gold": 10}
    assert (queues["support"].skill, queues["support"].escalation) == ("inquiry", [{"after_s": 20, "max_level": 2}])
    assert {queues["orders"].overflow_action, queues["support"].overflow_action} == {"callback", "voicemail"}
    assert routing.members_of(session, actor, queues["orders"].id)["operator"] == 1

    (flow,) = ivr.list_flows(session, actor)
    versions = ivr.list_versions(session, actor, flow.id)
    assert (flow.name, flow.current_version, len(versions)) == ("order-desk", 2, 2)
    assert ivr.get_version(session, actor, flow.id, 1).definition == ORDER_DESK_EXAMPLE  # the template as is
    live = ivr.live_flow(session, actor.tenant_id, "order-desk")
    assert live is not None
    hours = live.nodes["hours"]
    assert isinstance(hours, Hours)
    new_year = Hours.model_validate(ORDER_DESK_EXAMPLE["nodes"]["hours"]).schedule
    midnight = datetime(2026, 12, 31, 15, 30, tzinfo=UTC)  # 1 Jan 00:30 in Japan: closed in v1, open in the demo
    assert not is_open(new_year, midnight) and is_open(hours.schedule, midnight)

    numbers = {n.number_e164: (n.flow, n.queue) for n in routing.list_numbers(session, actor)}
    assert numbers == {"+81120555010": ("order-desk", None), "+81120555020": (None, "vip"),
                       "+81120555030": (None, "support")}  # fmt: skip


# --- the traffic on a virtual clock -----------------------------------------------------------------------


@dataclass
class Center:
    sim: SimDriver
    clock: VirtualClock
    controller: CallController
    factory: sessionmaker[Session]
    actor: Actor

    def rows(self, model: type) -> list:  # type: ignore[type-arg]
        with self.factory() as s:
            return list(s.scalars(select(model)))


@pytest.fixture
def center(session_factory: sessionmaker[Session], actor: Actor) -> Iterator[Center]:
    """The demo routing behind the real pipeline (sink, controller, database listener) on a virtual clock, wired
    like ``kakehashi.pipeline.start`` (a closed wrap-up frees the agent)."""
    with unit_of_work(session_factory) as s:
        demo.ensure(s, actor)
        vip = CustomerCreate(name="山田 花子", rank="vip", phones=[PhoneIn(number=SHOWCASE_NUMBERS["山田 花子"])])
        customers.create_customer(s, actor, vip)
    clock = VirtualClock()
    sim = SimDriver(clock)
    CallEventSink.attach(sim, session_factory)
    controller = CallController(sim, clock, DbDirectory(session_factory), DbListener(session_factory, sim.name))
    controller.attach()

    def closed(event: Event) -> None:
        if event.tenant_id == actor.tenant_id and event.payload.get("disposition") is not None:
            controller.wrap_up_finished(event.tenant_id, str(event.payload["call_ref"]))

    unsubscribe = bus.subscribe("call.ended", closed)
    yield Center(sim, clock, controller, session_factory, actor)
    unsubscribe()


def traffic(c: Center, **options: object) -> DemoTraffic:
    with c.factory() as s:
        codes = [a.code for a in agents.aux_codes(s, c.actor)]
        results = [(d.code, d.kind) for d in dispositions.list_dispositions(s, c.actor)]
    return DemoTraffic(
        c.sim,
        c.controller,
        c.factory,
        c.actor.tenant_id,
        numbers=list(demo.NUMBERS),
        agents=demo.SIMULATED_AGENTS,
        operator=demo.OPERATOR,
        aux_codes=codes,
        dispositions=results,
        options=TrafficOptions(**options),  # type: ignore[arg-type]
    )


def test_simulated_customers_reach_simulated_agents_who_close_their_wrap_ups(center: Center) -> None:
    run = traffic(center, calls_per_hour=300, seed=7, break_chance=0.2).start()
    for _ in range(120):  # 10 minutes, a TV spike included
        center.clock.advance(5)
    stats = run.stats
    assert stats.errors == 0
    assert stats.placed > 40 and stats.answered > 20 and stats.wrap_ups_closed > 10 and stats.breaks > 0

    calls = [c for c in center.rows(Call) if c.direction == "inbound"]
    assert len(calls) == stats.placed
    assert {c.dnis for c in calls} == set(demo.NUMBERS)
    assert {c.queue for c in calls} >= {"orders", "support", "vip"}
    assert any(c.customer_id is not None for c in calls) and any(c.customer_id is None for c in calls)
    cdrs = center.rows(Cdr)
    handled = [c for c in cdrs if c.agent is not None]
    assert {c.agent for c in handled} <= set(demo.SIMULATED_AGENTS)  # the real operator stayed logged out
    demo_codes = {code for code, _, _ in demo.DISPOSITIONS}  # the center's own list, which the desk offers
    closed = [c for c in handled if c.disposition in demo_codes]
    assert len(closed) == stats.wrap_ups_closed
    assert "注文受付" in {c.disposition for c in closed}  # a sale is the most common result
    assert {c.final_state for c in cdrs} >= {"ended"}

    run.stop()
    placed = stats.placed
    center.clock.advance(3600)  # callers still in line give up or finish; nobody new calls, no agent comes back
    assert stats.placed == placed
    with center.factory() as s:
        states = {a.name: a.state for a in s.scalars(select(Agent))}
    assert {states[a] for a in demo.SIMULATED_AGENTS} == {"logged_out"}
    assert states["operator"] == "logged_out"


# --- the app starts and stops it --------------------------------------------------------------------------


@pytest.fixture
def committed_url(engine: Engine, tmp_path: Path) -> Iterator[str]:
    """A database of its own (the app commits, and several threads write): a file, or a PostgreSQL database."""
    if engine.dialect.name == "sqlite":
        yield f"sqlite:///{tmp_path / 'demo.db'}"
        return
    url = PG_URL + "_traffic"
    recreate_database(url)
    yield url
    recreate_database(url, create=False)


def test_the_app_runs_demo_traffic_until_it_shuts_down(committed_url: str, tmp_path: Path) -> None:
    own = make_engine(committed_url)
    migrate.upgrade(own)
    with unit_of_work(make_session_factory(own)) as s:
        tenant_id = tenants.ensure(s, "center").id
        demo.ensure(s, Actor(tenant_id=tenant_id, username="demo"))
    own.dispose()

    answered = threading.Event()

    def bridged(event: Event) -> None:
        if event.tenant_id == tenant_id and event.payload.get("agent") in demo.SIMULATED_AGENTS:
            answered.set()

    settings = Settings(data_dir=tmp_path, database_url=committed_url, default_tenant="center",
                        demo_traffic_per_hour=3600)  # fmt: skip
    app = create_app(settings)
    before = set(threading.enumerate())
    unsubscribe = bus.subscribe("call.bridged", bridged)
    try:
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
            run = app.state.demo_traffic
            assert run is not None and not run.stopped
            assert answered.wait(timeout=30), run.stats  # a caller went through the IVR to a simulated agent
        assert run.stopped and run.stats.errors == 0
    finally:
        unsubscribe()
    clocks = [t for t in set(threading.enumerate()) - before if t.name == "sim-clock"]
    assert not any(t.is_alive() for t in clocks)
    check = make_engine(committed_url)
    try:
        with check.connect() as conn:
            placed = conn.execute(select(Call.id).where(Call.direction == "inbound")).all()
            assert placed
    finally:
        check.dispose()


def test_only_the_demo_turns_traffic_on_by_default(settings: Settings) -> None:
    assert settings.demo_traffic_per_hour == 0 and Settings.model_fields["demo_traffic_per_hour"].default == 0
