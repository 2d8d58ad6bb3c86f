"""Properties of reservation over random leads, blocks, outcomes and clocks (hypothesis; both databases):
a DNC, refused, suspended or excluded number is never reserved; nothing is reserved outside its window; the
attempt caps hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from kakehashi.campaigns import service
from kakehashi.campaigns.models import Refusal
from kakehashi.campaigns.schemas import CampaignCreate, LeadsIn, OutcomeIn, RetryRules, Window, clock_minutes
from kakehashi.customers import service as customers
from kakehashi.customers.schemas import CustomerCreate, PhoneIn
from kakehashi.kit.context import Actor, Role

PHONES = [f"+8190600000{n:02d}" for n in range(8)]
START = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)  # Sunday 00:00 JST; Monday 11/23 is a holiday
BLOCKS = ("dnc", "refused", "do_not_contact", "outbound_excluded")
RESULTS = ("answered", "busy", "no_answer", "machine", "invalid", "failed")

windows = st.lists(
    st.builds(
        lambda d, s, length: Window(weekday=d, start=f"{s:02d}:00", end=f"{min(s + length, 24):02d}:00"),
        st.integers(0, 6),
        st.integers(0, 23),
        st.integers(1, 16),
    ),
    min_size=1,
    max_size=10,
)
steps = st.lists(
    st.tuples(
        st.integers(0, 60 * 24 * 5),  # minutes after START (sorted: the clock runs forward)
        st.sampled_from(RESULTS),
        st.booleans(),  # a final result
        st.integers(0, 2),  # 0: none, 1: personal callback, 2: shared callback
        st.sampled_from(("a1", "a2")),
    ),
    min_size=5,
    max_size=30,
).map(sorted)
#: Most days have daytime hours, so that many steps find the window open; the random ones add the rest.
DAYTIME = [Window(weekday=d, start="09:00", end="18:00") for d in range(7)]


def block(session: Session, actor: Actor, campaign_id: int, phone: str, how: str) -> None:
    if how == "dnc":
        service.add_dnc(session, actor, phone, "")
    elif how == "refused":
        session.add(Refusal(tenant_id=actor.tenant_id, e164=phone, campaign_id=campaign_id, by="x"))
    else:
        customer = customers.create_customer(
            session, actor, CustomerCreate(name="対象 者", phones=[PhoneIn(number=phone)])
        )
        setattr(customer, how, True)
    session.flush()


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    windows=windows,
    night=st.booleans(),
    holidays_off=st.booleans(),
    max_attempts=st.integers(1, 4),
    max_per_day=st.integers(1, 3),
    delay=st.integers(0, 240),
    blocked=st.dictionaries(st.sampled_from(PHONES), st.sampled_from(BLOCKS), max_size=4),
    steps=steps,
)
def test_reservation_never_breaks_the_rules(
    session: Session,
    actor: Actor,
    windows: list[Window],
    night: bool,
    holidays_off: bool,
    max_attempts: int,
    max_per_day: int,
    delay: int,
    blocked: dict[str, str],
    steps: list[tuple[int, str, bool, int, str]],
) -> None:
    outer = session.begin_nested()
    try:
        rules = RetryRules(
            delays={k: delay for k in ("no_answer", "busy", "machine", "invalid", "failed")},
            max_attempts=max_attempts,
            max_per_day=max_per_day,
        )
        day_windows = [w for w in windows if not service.window_touches_night(w)] or [
            Window(weekday=0, start="10:00", end="17:00")
        ]
        data = CampaignCreate(
            name="性質",
            kind="research",
            caller_id="03-1234-5678",
            windows=DAYTIME + (windows if night else day_windows),
            night_reason="夜間希望" if night else None,
            holidays_off=holidays_off,
            retry_rules=rules,
        )
        campaign = service.create_campaign(session, actor, data)
        service.add_leads(session, actor, campaign.id, LeadsIn(phones=PHONES))
        service.set_status(session, actor, campaign.id, "running")
        for phone, how in blocked.items():  # after loading: reservation must check again
            block(session, actor, campaign.id, phone, how)
        per_day: dict[tuple[int, object], int] = {}
        for offset, result, final, callback, agent_name in steps:
            now = START + timedelta(minutes=offset)
            agent = Actor(tenant_id=actor.tenant_id, username=agent_name, role=Role.OPERATOR)
            lead = service.reserve_next(session, agent, campaign.id, agent_name, now).lead
            if lead is None:
                continue
            assert lead.phone not in blocked
            local = now.astimezone(service.BUSINESS_TZ)
            minute = local.hour * 60 + local.minute
            assert any(
                w.weekday == local.weekday() and clock_minutes(w.start) <= minute < clock_minutes(w.end)
                for w in data.windows
            )
            assert night or not service.in_night(minute)
            if holidays_off:
                assert not service.is_holiday(now.astimezone(service.BUSINESS_TZ).date())
            assert lead.attempts < max_attempts
            key = (lead.id, now.astimezone(service.BUSINESS_TZ).date())
            assert per_day.get(key, 0) < max_per_day
            per_day[key] = per_day.get(key, 0) + 1
            outcome = OutcomeIn(
                result=result,  # type: ignore[arg-type]
                final=final,
                callback_at=now + timedelta(hours=1) if callback else None,
                callback_personal=callback == 1,
            )
            service.record_outcome(session, agent, campaign.id, lead.id, outcome, now)
            assert lead.attempts <= max_attempts
    finally:
        outer.rollback()


# -- refusals by product line (issue 17): a refusal blocks the campaigns in its scope, never lets one through

LINES = ("insurance", "energy", None)
refusals = st.lists(
    st.tuples(st.sampled_from(PHONES), st.sampled_from(("company", "product_line")), st.sampled_from(LINES[:2])),
    max_size=6,
)


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    lines=st.lists(st.sampled_from(LINES), min_size=1, max_size=3),
    given_refusals=refusals,
    lifted=st.sets(st.integers(0, 5), max_size=2),
    reservations=st.lists(st.integers(0, 2), min_size=1, max_size=12),
)
def test_a_refused_number_is_never_handed_out_in_its_scope(
    session: Session,
    actor: Actor,
    lines: list[str | None],
    given_refusals: list[tuple[str, str, str]],
    lifted: set[int],
    reservations: list[int],
) -> None:
    outer = session.begin_nested()
    try:
        always = [Window(weekday=d, start="09:00", end="18:00") for d in range(7)]
        campaigns = []
        for n, line in enumerate(lines):
            data = CampaignCreate(
                name=f"線{n}", kind="sales", caller_id="03-1234-5678", windows=always, holidays_off=False,
                product_line=line,
            )  # fmt: skip
            campaign = service.create_campaign(session, actor, data)
            service.add_leads(session, actor, campaign.id, LeadsIn(phones=PHONES))
            service.set_status(session, actor, campaign.id, "running")
            campaigns.append(campaign)
        # Refusals after loading (reservation must check again); some lifted by an admin.
        admin = Actor(tenant_id=actor.tenant_id, username="admin", role=Role.ADMIN)
        for n, (phone, scope, line) in enumerate(given_refusals):
            refusal = Refusal(
                tenant_id=actor.tenant_id, e164=phone, scope=scope, campaign_id=campaigns[0].id, by="x",
                product_line=line if scope == "product_line" else None,
            )  # fmt: skip
            session.add(refusal)
            session.flush()
            if n in lifted:
                service.lift_refusal(session, admin, refusal.id, "本人の依頼", START)

        def blocks(phone: str, campaign_line: str | None) -> bool:
            return any(
                p == phone
                and n not in lifted
                and (scope == "company" or (campaign_line is not None and line == campaign_line))
                for n, (p, scope, line) in enumerate(given_refusals)
            )

        for campaign in campaigns:
            # Scrubbing (at load, or by campaign) is exact: refused iff a refusal in force covers this campaign.
            reasons = service.scrub(session, actor, campaign, PHONES, duplicates=False)
            for phone in PHONES:
                assert (reasons.get(phone) == "refused") == blocks(phone, campaign.product_line)
                assert (service.refusal_for(session, actor, phone, campaign) is not None) == blocks(
                    phone, campaign.product_line
                )
        monday_10 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
        for step, which in enumerate(reservations):
            campaign = campaigns[which % len(campaigns)]
            agent = Actor(tenant_id=actor.tenant_id, username=f"a{step}", role=Role.OPERATOR)
            lead = service.reserve_next(session, agent, campaign.id, agent.username, monday_10).lead
            if lead is not None:  # handed out: no refusal in force covers it in this campaign
                assert not blocks(lead.phone, campaign.product_line)
                # Without a campaign (a manual dial) any refusal in force blocks.
                in_force = any(p == lead.phone and n not in lifted for n, (p, _, _) in enumerate(given_refusals))
                assert (service.refusal_for(session, actor, lead.phone) is not None) == in_force
    finally:
        outer.rollback()
