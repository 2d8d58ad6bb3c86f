"""``kakehashi bench calls``: hours of simulated call-center traffic through the real call pipeline.

A TV-shopping hour (base rate with a 20× spike) is planned, dialled into the simulator on a virtual
clock, and every driver event goes through ``calls.sink`` into the configured database (one transaction
per event, CDRs rated). A deliberately simple router (the first free agent; issue 5 brings the real ACD)
keeps calls flowing. Prints simulated hours per wall second and events per second.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.calls import service as calls
from kakehashi.calls.models import Call, Cdr
from kakehashi.calls.sink import CallEventSink
from kakehashi.kit import migrate
from kakehashi.kit.context import Actor
from kakehashi.kit.db import make_session_factory, unit_of_work
from kakehashi.kit.timers import VirtualClock
from kakehashi.telephony.drivers.sim.driver import SimDriver
from kakehashi.telephony.drivers.sim.traffic import ArrivalProfile, CallerModel, Spike, plan_inbound, schedule_inbound
from kakehashi.telephony.port import Bridged, DriverEvent, Ended, Offered
from kakehashi.tenants import service as tenants


class FirstFreeAgent:
    """Route each caller to the first idle agent, else keep them waiting in order; agents are idle again
    after the call plus a fixed wrap-up. Enough to make calls end the way they do in a center."""

    def __init__(self, driver: SimDriver, factory: sessionmaker[Session], agents: int, wrap_up_s: float) -> None:
        self.driver = driver
        self.factory = factory
        self.idle = deque(f"agent{i:03d}" for i in range(agents))
        self.waiting: deque[str] = deque()
        self.talking: dict[str, str] = {}
        self.wrap_up_s = wrap_up_s
        for name in self.idle:
            driver.set_agent(name, answer_after=2.0)

    def __call__(self, event: DriverEvent) -> None:
        if isinstance(event, Offered):
            self.driver.answer(event.call_ref)
            self._db(event.call_ref, lambda s, call: calls.queue_call(s, call, "orders", event.at))
            self.waiting.append(event.call_ref)
        elif isinstance(event, Bridged):
            self.talking[event.call_ref] = event.agent
        elif isinstance(event, Ended):
            if event.call_ref in self.waiting:
                self.waiting.remove(event.call_ref)
            agent = self.talking.pop(event.call_ref, None)
            if agent is not None:
                ref = event.call_ref
                self.driver.clock.call_later(self.wrap_up_s, lambda: self._free(agent, ref))
        self._dispatch()

    def _free(self, agent: str, ref: str) -> None:
        now = self.driver.clock.now()
        self._db(ref, lambda s, call: calls.finish_wrap_up(s, _system(call.tenant_id), call.id, "完了", now))
        self.idle.append(agent)
        self._dispatch()

    def _db(self, ref: str, work: Callable[[Session, Call], object]) -> None:
        with unit_of_work(self.factory) as session:
            call = session.scalars(select(Call).where(Call.ref == ref)).one()
            work(session, call)

    def _dispatch(self) -> None:
        while self.idle and self.waiting:
            self.driver.route_to_agent(self.waiting.popleft(), self.idle.popleft())


def _system(tenant_id: int) -> Actor:
    return Actor(tenant_id=tenant_id, username="bench-router", origin="bench")


def run(
    engine: Engine, *, hours: float = 1.0, calls_per_hour: float = 600, agents: int = 40, seed: int = 1
) -> dict[str, Any]:
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        tenant_id = tenants.get_or_create(session, "bench-calls", "bench-calls").id
    horizon = hours * 3600
    profile = ArrivalProfile(
        calls_per_hour, (Spike(start_s=horizon / 3, duration_s=min(1800, horizon / 3), multiplier=20),)
    )
    plan = plan_inbound(profile, horizon, seed=seed, callers=CallerModel(mean_patience_s=120, mean_talk_s=180))
    driver = SimDriver(VirtualClock(), prefix=f"bench{random.Random(seed).randrange(10**9)}-{time.time_ns()}")
    CallEventSink.attach(driver, factory)  # the database sees each event first,
    events = 0

    def count(_: DriverEvent) -> None:
        nonlocal events
        events += 1

    driver.subscribe(count)
    driver.subscribe(FirstFreeAgent(driver, factory, agents, wrap_up_s=30))  # then the router reacts
    schedule_inbound(driver, plan, tenant_id=tenant_id, dnis="0120-444-444")
    started = time.perf_counter()
    driver.clock.advance(horizon + 3600)  # let the last callers finish
    wall = time.perf_counter() - started
    with engine.connect() as conn:
        states = dict(
            conn.execute(
                select(Call.state, func.count())
                .where(Call.tenant_id == tenant_id, Call.ref.like(f"{driver.prefix}-%"))
                .group_by(Call.state)
            ).all()
        )
        cdrs = conn.execute(
            select(func.count())
            .select_from(Cdr)
            .join(Call, Call.id == Cdr.call_id)
            .where(Call.ref.like(f"{driver.prefix}-%"))
        ).scalar_one()
    return {
        "database": engine.dialect.name,
        "simulated_hours": hours,
        "calls": len(plan),
        "agents": agents,
        "events": events,
        "wall_s": round(wall, 3),
        "events_per_s": round(events / wall, 1),
        "simulated_seconds_per_wall_second": round((horizon + 3600) / wall, 1),
        "final_states": {str(k): v for k, v in states.items()},
        "cdrs": cdrs,
    }
