"""Predictive dialing's abandon handling under random floors (hypothesis): however hard the pacer over-dials,
every person left without an agent hears the identification message and is hung up, the attempt says so, and
the number is not dialled again for 72 hours."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.agents import service as agents
from kakehashi.campaigns import service as campaigns
from kakehashi.campaigns.models import Lead, LeadAttempt
from kakehashi.campaigns.schemas import CampaignCreate, LeadsIn
from kakehashi.dialer import DialerListener
from kakehashi.dialer import attach as attach_dialer
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import unit_of_work
from kakehashi.kit.timers import VirtualClock
from kakehashi.pacing.types import DialOutcome, PacingState
from kakehashi.routing.controller import CallController
from kakehashi.routing.engine import AgentState
from kakehashi.routing.persist import DbDirectory
from kakehashi.telephony.drivers.sim.driver import SimDriver
from kakehashi.telephony.port import DriverEvent, Ended, Offered

START = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)  # Tuesday 10:00 in Japan
ABANDON = "株式会社かけはしです。改めてお電話いたします。お問い合わせは03-1234-5678まで。"
_runs = itertools.count(1)


@dataclass
class OverDialer:
    """A pacer that dials ``extra`` more calls than there are free agents, every tick: abandons are certain."""

    extra: int

    def decide(self, state: PacingState) -> int:
        return max(state.agents_ready + self.extra - state.calls_in_flight - state.calls_waiting, 0)

    def record(self, outcome: DialOutcome) -> None:
        pass

    def handled(self, seconds: float, at: datetime) -> None:
        pass

    def wrapped(self, seconds: float, at: datetime) -> None:
        pass

    @property
    def level(self) -> float:
        return 1.0


@settings(max_examples=6, deadline=None, database=None, suppress_health_check=list(HealthCheck),
          phases=(Phase.explicit, Phase.reuse, Phase.generate))  # fmt: skip
@given(
    agent_count=st.integers(1, 3),
    leads=st.integers(4, 12),
    extra=st.integers(1, 4),
    answer_share=st.floats(0.4, 1.0),
    delay=st.integers(1, 90),
    run_hours=st.integers(1, 3),
    seed=st.integers(0, 10_000),
)
def test_every_abandoned_person_hears_the_message_and_is_not_redialled_for_72_hours(
    session_factory: sessionmaker[Session], actor: Actor, agent_count: int, leads: int, extra: int,
    answer_share: float, delay: int, run_hours: int, seed: int,
) -> None:  # fmt: skip
    run = next(_runs)
    rng = random.Random(seed)
    phones = [f"+819071{run:03d}{i:03d}" for i in range(leads)]
    names = [f"pp{run}-{i}" for i in range(agent_count)]
    with unit_of_work(session_factory) as s:
        for name in names:
            agents.create_agent(s, actor, name, name, {})
        campaign = campaigns.create_campaign(s, actor, CampaignCreate.model_validate({
            "name": f"predictive property {run}", "kind": "sales", "caller_id": "03-1234-5678",
            "dial_mode": "predictive", "agents": names, "ring_timeout_s": 20, "holidays_off": False,
            "windows": [{"weekday": d, "start": "08:00", "end": "21:00"} for d in range(7)],
            "retry_rules": {"delays": {k: delay for k in ("no_answer", "busy", "machine", "failed")},
                            "max_attempts": 10, "max_per_day": 10},
            "predictive": {"abandon_message": ABANDON},
        }))  # fmt: skip
        campaigns.add_leads(s, actor, campaign.id, LeadsIn(phones=phones))
        campaigns.set_status(s, actor, campaign.id, "running")
        campaign_id = campaign.id
    clock = VirtualClock(START)
    sim = SimDriver(clock, prefix=f"pprop{run}")
    for name in names:
        sim.set_agent(name, answer_after=rng.uniform(0.5, 3))
    offered: list[tuple[datetime, str, str]] = []
    ended: dict[str, datetime] = {}

    def seen(event: DriverEvent) -> None:
        if isinstance(event, Offered):
            offered.append((event.at, event.dnis, event.call_ref))
        elif isinstance(event, Ended):
            ended[event.call_ref] = event.at

    sim.subscribe(seen)
    listener = DialerListener(session_factory, sim.name)
    controller = CallController(sim, clock, DbDirectory(session_factory), listener).attach()
    dialer = attach_dialer(controller, sim, session_factory, clock, listener,
                           pacer_factory=lambda _c: OverDialer(extra))  # fmt: skip

    first_wave: set[str] = set()

    def called_party(number: str, at: datetime) -> None:
        if at == START + timedelta(seconds=1):  # the first tick's calls all answer together: abandons are certain
            first_wave.add(number)
            sim.set_number(number, "answer", ring_seconds=5, talk_s=rng.uniform(10, 90))
            return
        outcome = "answer" if rng.random() < answer_share else rng.choice(["busy", "no_answer"])
        sim.set_number(number, outcome, ring_seconds=rng.uniform(2, 12), talk_s=rng.uniform(10, 90))

    dialer.called_party = called_party
    for name in names:
        controller.choose_state(actor.tenant_id, name, AgentState.AVAILABLE)
        dialer.join(Actor(tenant_id=actor.tenant_id, username=name, role=Role.OPERATOR), name, campaign_id)
    clock.advance(run_hours * 3600)
    for name in names:
        dialer.leave(Actor(tenant_id=actor.tenant_id, username=name, role=Role.OPERATOR), name)
    clock.advance(600)

    with session_factory() as s:
        rows = s.execute(
            select(LeadAttempt, Lead.phone).join(Lead, Lead.id == LeadAttempt.lead_id)
            .where(LeadAttempt.campaign_id == campaign_id)
        ).all()  # fmt: skip
    abandoned = [(attempt, phone) for attempt, phone in rows if attempt.result == "abandoned"]
    assert abandoned, "the over-dialer leaves people without an agent"
    for attempt, phone in abandoned:
        assert attempt.human and attempt.mode == "predictive" and attempt.ended_at is not None
        ref = attempt.call_ref
        assert ref is not None
        assert sim.prompts_played(ref) == [ABANDON], "an abandoned person hears the identification message"
        assert ref in ended and ended[ref] - attempt.ended_at.replace(tzinfo=UTC) <= timedelta(seconds=2)
        redials = [at for at, number, other in offered
                   if number == phone and other != ref and at > attempt.ended_at.replace(tzinfo=UTC)]  # fmt: skip
        assert all(at - attempt.ended_at.replace(tzinfo=UTC) >= timedelta(hours=72) for at in redials), (
            f"{phone} was dialled again within 72 hours of an abandon"
        )
    for attempt, _ in rows:  # and the people who got an agent never heard the message
        if attempt.result == "answered" and attempt.call_ref is not None:
            assert sim.prompts_played(attempt.call_ref) == []
