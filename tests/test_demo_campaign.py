"""The demo's outbound campaign (``demo.campaigns``) beside the inbound traffic, on the real pipeline with the
campaign dialer and a virtual clock: its list loads through the real upload path with the simulator's outcome
mix, the simulated agents join it and work leads to results, and the calls carry the campaign."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.calls.models import Cdr
from kakehashi.calls.sink import CallEventSink
from kakehashi.campaigns import service as campaigns
from kakehashi.campaigns.models import CampaignList, Lead, LeadAttempt
from kakehashi.demo import campaigns as demo_campaign
from kakehashi.demo import routing as demo
from kakehashi.demo.traffic import DemoTraffic, TrafficOptions
from kakehashi.dialer import DialerListener
from kakehashi.dialer import attach as attach_dialer
from kakehashi.kit.context import Actor
from kakehashi.kit.db import unit_of_work
from kakehashi.kit.events import Event, bus
from kakehashi.kit.timers import VirtualClock
from kakehashi.routing.controller import CallController
from kakehashi.routing.persist import DbDirectory
from kakehashi.telephony.drivers.sim.driver import SimDriver


@pytest.fixture
def running(session_factory: sessionmaker[Session], actor: Actor) -> Iterator[tuple[DemoTraffic, VirtualClock]]:
    with unit_of_work(session_factory) as s:
        demo.ensure(s, actor)
    assert demo_campaign.ensure_in(session_factory, actor)
    assert not demo_campaign.ensure_in(session_factory, actor)  # made once
    clock = VirtualClock()
    sim = SimDriver(clock)
    CallEventSink.attach(sim, session_factory)
    listener = DialerListener(session_factory, sim.name)
    controller = CallController(sim, clock, DbDirectory(session_factory), listener).attach()
    dialer = attach_dialer(controller, sim, session_factory, clock, listener)

    def closed(event: Event) -> None:
        if event.tenant_id == actor.tenant_id and event.payload.get("disposition") is not None:
            controller.wrap_up_finished(event.tenant_id, str(event.payload["call_ref"]))

    unsubscribe = bus.subscribe("call.ended", closed)
    with session_factory() as s:
        campaign = next(c for c in campaigns.list_campaigns(s, actor) if c.name == demo_campaign.CAMPAIGN)
    traffic = DemoTraffic(
        sim, controller, session_factory, actor.tenant_id, numbers=list(demo.NUMBERS), agents=demo.SIMULATED_AGENTS,
        options=TrafficOptions(calls_per_hour=60, seed=3), campaign=(campaign.id, demo_campaign.OUTBOUND_AGENTS),
        dialer=dialer,
    ).start()  # fmt: skip
    yield traffic, clock
    traffic.stop()
    unsubscribe()


def test_the_demo_campaign_is_worked_beside_the_inbound_traffic(
    running: tuple[DemoTraffic, VirtualClock], session_factory: sessionmaker[Session]
) -> None:
    traffic, clock = running
    for _ in range(240):  # 20 minutes
        clock.advance(5)
    assert traffic.stats.errors == 0
    with session_factory() as s:
        mix = s.scalars(select(CampaignList.sim_outcomes)).one()
        assert mix == demo_campaign.SIM_OUTCOMES
        assert s.query(Lead).count() == demo_campaign.LEADS
        tried = list(s.scalars(select(LeadAttempt)))
        results = Counter(a.result for a in tried)
        codes = Counter(a.disposition for a in tried if a.disposition)
        agents = {a.agent for a in tried}
        campaign_cdrs = s.scalars(select(Cdr).where(Cdr.campaign_id.is_not(None))).all()
        inbound_cdrs = s.scalars(select(Cdr).where(Cdr.direction == "inbound")).all()
    assert len(tried) > 30 and agents <= set(demo_campaign.OUTBOUND_AGENTS)
    assert results["answered"] > 5 and results["no_answer"] > 0  # the list's outcome mix at work
    assert sum(codes.values()) > 5 and all(a.opening_confirmed_at for a in tried if a.contact)
    assert len(campaign_cdrs) >= results["answered"] and inbound_cdrs  # both directions at once
