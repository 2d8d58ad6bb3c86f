"""Properties of the progressive dialer over random lists, line outcomes, blocks and clocks (hypothesis; both
databases; the simulator on a virtual clock): a DNC, refused, suspended or excluded number is never dialled —
also when it is blocked while the campaign runs; nothing is dialled outside the calling window; no lead is on two
calls at once; the attempt caps (in total and per Japan day) hold."""

from __future__ import annotations

import contextlib
import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.agents import service as agents
from kakehashi.calls.sink import CallEventSink
from kakehashi.campaigns import service as campaigns
from kakehashi.campaigns.models import Refusal
from kakehashi.campaigns.schemas import CampaignCreate, LeadsIn, Window
from kakehashi.customers import service as customers
from kakehashi.customers.schemas import CustomerCreate, PhoneIn
from kakehashi.dialer import DialerListener
from kakehashi.dialer import attach as attach_dialer
from kakehashi.kit.clock import BUSINESS_TZ
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import unit_of_work
from kakehashi.kit.errors import Conflict
from kakehashi.kit.timers import VirtualClock
from kakehashi.routing.controller import CallController
from kakehashi.routing.engine import AgentState
from kakehashi.routing.persist import DbDirectory
from kakehashi.telephony.drivers.sim.driver import OUTCOMES, SimDriver
from kakehashi.telephony.port import DriverEvent, Ended, Offered

START = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)  # Monday 09:00 in Japan
BLOCKS = ("dnc", "refused", "do_not_contact", "outbound_excluded")
_runs = itertools.count()

windows = st.lists(
    st.builds(
        lambda d, s, length: Window(weekday=d, start=f"{s:02d}:00", end=f"{min(s + length, 21):02d}:00"),
        st.integers(0, 6),
        st.integers(8, 20),
        st.integers(1, 8),
    ),
    min_size=1,
    max_size=8,
)


def _block(session: Session, actor: Actor, campaign_id: int, phone: str, how: str) -> None:
    if how == "dnc":
        with contextlib.suppress(Conflict):  # blocked twice the same way
            campaigns.add_dnc(session, actor, phone, "")
    elif how == "refused":
        session.add(Refusal(tenant_id=actor.tenant_id, e164=phone, campaign_id=campaign_id, by="x"))
    else:
        try:
            customer = customers.create_customer(
                session, actor, CustomerCreate(name="対象 者", phones=[PhoneIn(number=phone)])
            )
        except Conflict:  # blocked before as a customer already (the number is on one): it stays blocked
            return
        setattr(customer, how, True)
    session.flush()


def _in_window(spans: list[Window], at: datetime) -> bool:
    local = at.astimezone(BUSINESS_TZ)
    minute = local.hour * 60 + local.minute
    return any(
        w.weekday == local.weekday()
        and int(w.start[:2]) * 60 + int(w.start[3:]) <= minute < int(w.end[:2]) * 60 + int(w.end[3:])
        for w in spans
    )


# No shrinking: an example runs days of virtual calls; the failing example is printed as found.
@settings(max_examples=6, deadline=None, database=None, suppress_health_check=list(HealthCheck),
          phases=(Phase.explicit, Phase.reuse, Phase.generate))  # fmt: skip
@given(
    spans=windows,
    outcomes=st.lists(st.sampled_from(OUTCOMES), min_size=3, max_size=10),
    blocked_before=st.dictionaries(st.integers(0, 9), st.sampled_from(BLOCKS), max_size=3),
    blocked_later=st.dictionaries(
        st.integers(0, 9), st.tuples(st.sampled_from(BLOCKS), st.integers(1, 600)), max_size=3
    ),
    agent_count=st.integers(1, 3),
    max_attempts=st.integers(1, 4),
    max_per_day=st.integers(1, 3),
    delay=st.integers(1, 180),
    run_hours=st.integers(1, 20),
)
def test_the_dialer_never_breaks_the_rules(
    session_factory: sessionmaker[Session],
    actor: Actor,
    spans: list[Window],
    outcomes: list[str],
    blocked_before: dict[int, str],
    blocked_later: dict[int, tuple[str, int]],
    agent_count: int,
    max_attempts: int,
    max_per_day: int,
    delay: int,
    run_hours: int,
) -> None:
    run = next(_runs)
    phones = [f"+819070{run:03d}{i:03d}" for i in range(len(outcomes))]
    names = [f"p{run}-{i}" for i in range(agent_count)]
    with unit_of_work(session_factory) as s:
        for name in names:
            agents.create_agent(s, actor, name, name, {})
        campaign = campaigns.create_campaign(s, actor, CampaignCreate(
            name=f"property {run}", kind="sales", caller_id="03-1234-5678", dial_mode="progressive",
            windows=spans, holidays_off=False, agents=names, ring_timeout_s=20,
            retry_rules={"delays": {k: delay for k in ("no_answer", "busy", "machine", "failed")} | {"invalid": None},
                         "max_attempts": max_attempts, "max_per_day": max_per_day},
        ))  # fmt: skip
        campaigns.add_leads(s, actor, campaign.id, LeadsIn(phones=phones))
        for index, how in blocked_before.items():
            if index < len(phones):
                _block(s, actor, campaign.id, phones[index], how)
        campaigns.set_status(s, actor, campaign.id, "running")
        campaign_id = campaign.id
    clock = VirtualClock(START)
    sim = SimDriver(clock, prefix=f"prop{run}")
    for phone, outcome in zip(phones, outcomes, strict=True):
        sim.set_number(phone, outcome, ring_seconds=5, talk_s=30)
    dials: list[tuple[datetime, str, str]] = []  # (when, number, call ref)
    ends: dict[str, datetime] = {}

    def seen(event: DriverEvent) -> None:
        if isinstance(event, Offered):
            dials.append((event.at, event.dnis, event.call_ref))
        elif isinstance(event, Ended):
            ends[event.call_ref] = event.at

    sim.subscribe(seen)
    CallEventSink.attach(sim, session_factory)
    listener = DialerListener(session_factory, sim.name)
    controller = CallController(sim, clock, DbDirectory(session_factory), listener).attach()
    # Idle agents looked at every 10 minutes (not 15 s): the runs cover days of virtual time.
    dialer = attach_dialer(controller, sim, session_factory, clock, listener, idle_recheck_s=600)
    for name in names:
        sim.set_agent(name, answer_after=1)
        controller.choose_state(actor.tenant_id, name, AgentState.AVAILABLE)
        dialer.join(Actor(tenant_id=actor.tenant_id, username=name, role=Role.OPERATOR), name, campaign_id)
    blocked_at: dict[str, datetime] = {phones[i]: START for i in blocked_before if i < len(phones)}
    for index, (how, minute) in sorted(blocked_later.items(), key=lambda kv: kv[1][1]):
        if index >= len(phones):
            continue

        def later(phone: str = phones[index], how: str = how) -> None:
            with unit_of_work(session_factory) as s:
                _block(s, actor, campaign_id, phone, how)

        clock.call_later(minute * 60, later)
        blocked_at.setdefault(phones[index], START + timedelta(minutes=minute))
    clock.advance(run_hours * 3600)
    dialer.leave(actor, "")  # nothing to stop: the clock is simply not advanced any more

    per_number: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for at, number, ref in dials:
        assert number not in blocked_at or at < blocked_at[number], f"{number} dialled while blocked"
        assert _in_window(spans, at), f"dialled at {at.astimezone(BUSINESS_TZ)} outside the window"
        per_number[number].append((at, ref))
    for calls in per_number.values():
        assert len(calls) <= max_attempts
        days: dict[object, int] = defaultdict(int)
        for at, _ in calls:
            days[at.astimezone(BUSINESS_TZ).date()] += 1
        assert max(days.values()) <= max_per_day
        for (_, first), (second_at, _) in itertools.pairwise(calls):  # one call at a time per lead
            assert first in ends and ends[first] <= second_at
