"""Campaigns (issue 17, the foundation): settings and status, the calling window, scrubbing, leads, reservation
and outcomes, refusals — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from kakehashi.audit.models import AuditEvent
from kakehashi.campaigns import service
from kakehashi.campaigns.models import Campaign, Lead, Refusal
from kakehashi.campaigns.schemas import CampaignCreate, CampaignUpdate, LeadsIn, OutcomeIn, RetryRules, Window
from kakehashi.customers import service as customers
from kakehashi.customers.schemas import CustomerCreate, PhoneIn
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.errors import Conflict, Forbidden, NotFound, ValidationFailed

#: Monday 2026-12-07 10:00 in Japan (01:00 UTC).
MONDAY_10 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
WEEKDAYS_9_TO_20 = [Window(weekday=d, start="09:00", end="20:00") for d in range(5)]


def make_campaign(session: Session, actor: Actor, name: str = "秋の見直し", **kw: object) -> Campaign:
    data = {"name": name, "kind": "sales", "caller_id": "03-1234-5678", "windows": WEEKDAYS_9_TO_20, **kw}
    return service.create_campaign(session, actor, CampaignCreate.model_validate(data))


def running(session: Session, actor: Actor, phones: list[str], **kw: object) -> Campaign:
    campaign = make_campaign(session, actor, **kw)
    service.add_leads(session, actor, campaign.id, LeadsIn(phones=phones))
    service.set_status(session, actor, campaign.id, "running")
    return campaign


def audit_actions(session: Session, actor: Actor) -> list[str]:
    rows = session.scalars(
        select(AuditEvent.action).where(AuditEvent.tenant_id == actor.tenant_id).order_by(AuditEvent.id)
    )
    return list(rows)


# -- campaigns


def test_given_a_new_campaign_then_it_is_a_draft_with_its_caller_id_in_e164(session: Session, actor: Actor) -> None:
    campaign = make_campaign(session, actor)
    assert campaign.status == "draft" and campaign.caller_id == "+81312345678" and campaign.owner == "tester"
    assert RetryRules.model_validate(campaign.retry_rules).max_attempts == 5
    assert "campaign.create" in audit_actions(session, actor)


def test_given_a_name_in_use_when_creating_then_409(session: Session, actor: Actor, other_actor: Actor) -> None:
    make_campaign(session, actor)
    with pytest.raises(Conflict):
        make_campaign(session, actor)
    make_campaign(session, other_actor)  # unique within a tenant only


def test_given_a_window_at_night_without_a_reason_then_422_names_night_reason(session: Session, actor: Actor) -> None:
    late = [Window(weekday=0, start="18:00", end="21:30")]
    with pytest.raises(ValidationFailed) as err:
        make_campaign(session, actor, windows=late)
    assert {e["field"] for e in err.value.errors} == {"windows.0", "night_reason"}
    early = [Window(weekday=0, start="07:30", end="12:00")]
    with pytest.raises(ValidationFailed):
        make_campaign(session, actor, windows=early)
    campaign = make_campaign(session, actor, windows=late, night_reason="夜勤の方の希望時間帯(書面同意あり)")
    assert campaign.night_reason


def test_given_a_night_reason_when_cleared_by_update_then_422(session: Session, actor: Actor) -> None:
    campaign = make_campaign(session, actor, windows=[Window(weekday=0, start="20:00", end="22:00")], night_reason="x")
    with pytest.raises(ValidationFailed):
        service.update_campaign(session, actor, campaign.id, CampaignUpdate(night_reason=None))
    service.update_campaign(session, actor, campaign.id, CampaignUpdate(windows=WEEKDAYS_9_TO_20, night_reason=None))
    assert campaign.night_reason is None


def test_given_a_campaign_when_started_paused_and_stopped_then_each_change_is_audited(
    session: Session, actor: Actor
) -> None:
    campaign = make_campaign(session, actor)
    for status in ("running", "paused", "running", "stopped"):
        service.set_status(session, actor, campaign.id, status)
    assert audit_actions(session, actor).count("campaign.status") == 4
    with pytest.raises(Conflict):
        service.set_status(session, actor, campaign.id, "running")


def test_given_no_window_when_started_then_422(session: Session, actor: Actor) -> None:
    campaign = make_campaign(session, actor, windows=[])
    with pytest.raises(ValidationFailed):
        service.set_status(session, actor, campaign.id, "running")


def test_given_another_tenants_campaign_then_not_found(session: Session, actor: Actor, other_actor: Actor) -> None:
    campaign = make_campaign(session, other_actor)
    with pytest.raises(NotFound):
        service.get_campaign(session, actor, campaign.id)


# -- the calling window


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        (datetime(2026, 12, 7, 0, 0, tzinfo=UTC), True),  # Monday 09:00 JST
        (datetime(2026, 12, 6, 23, 59, tzinfo=UTC), False),  # Monday 08:59 JST
        (datetime(2026, 12, 7, 11, 0, tzinfo=UTC), False),  # Monday 20:00 JST (end is exclusive)
        (datetime(2026, 12, 5, 1, 0, tzinfo=UTC), False),  # Saturday 10:00 JST
        (datetime(2026, 11, 23, 1, 0, tzinfo=UTC), False),  # 勤労感謝の日 (a Monday) 10:00 JST
    ],
)
def test_the_calling_window_follows_weekdays_and_holidays_in_japan_time(
    session: Session, actor: Actor, at: datetime, open_: bool
) -> None:
    assert service.calling_window_open(make_campaign(session, actor), at) is open_


def test_given_holidays_on_then_a_holiday_is_a_working_day(session: Session, actor: Actor) -> None:
    campaign = make_campaign(session, actor, holidays_off=False)
    assert service.calling_window_open(campaign, datetime(2026, 11, 23, 1, 0, tzinfo=UTC))


def test_given_a_night_window_stored_without_a_reason_then_the_night_stays_closed(
    session: Session, actor: Actor
) -> None:
    campaign = make_campaign(session, actor, windows=[Window(weekday=0, start="20:00", end="23:00")], night_reason="x")
    at = datetime(2026, 12, 7, 12, 30, tzinfo=UTC)  # Monday 21:30 JST
    assert service.calling_window_open(campaign, at)
    campaign.night_reason = None  # e.g. cleared in the database: the rule still holds
    assert not service.calling_window_open(campaign, at)
    assert service.calling_window_open(campaign, at - timedelta(hours=1))


# -- scrubbing and leads


def customer_with(session: Session, actor: Actor, number: str, **flags: bool) -> int:
    customer = customers.create_customer(
        session, actor, CustomerCreate(name="架電 対象", phones=[PhoneIn(number=number)])
    )
    for flag, value in flags.items():
        setattr(customer, flag, value)
    session.flush()
    return customer.id


def test_scrub_names_the_reason_of_each_number_it_keeps_out(session: Session, actor: Actor) -> None:
    campaign = make_campaign(session, actor)
    customer_with(session, actor, "090-1000-0001", do_not_contact=True)
    customer_with(session, actor, "090-1000-0002", outbound_excluded=True)
    service.add_dnc(session, actor, "090-1000-0004", "本人申出")
    service.add_leads(session, actor, campaign.id, LeadsIn(phones=["090-1000-0005"]))
    other = make_campaign(session, actor, name="別件")
    session.add(Refusal(tenant_id=actor.tenant_id, e164="+819010000003", campaign_id=other.id, by="x"))
    session.flush()
    numbers = [f"+8190100000{n:02d}" for n in range(1, 7)]
    assert service.scrub(session, actor, campaign, numbers) == {
        "+819010000001": "do_not_contact",
        "+819010000002": "outbound_excluded",
        "+819010000003": "refused",
        "+819010000004": "dnc",
        "+819010000005": "duplicate",
    }


def test_given_another_tenants_dnc_and_refusal_then_they_do_not_scrub_ours(
    session: Session, actor: Actor, other_actor: Actor
) -> None:
    service.add_dnc(session, other_actor, "090-1000-0004", "")
    assert service.scrub(session, actor, make_campaign(session, actor), ["+819010000004"]) == {}


def test_adding_leads_normalizes_and_returns_every_number_left_out_with_its_reason(
    session: Session, actor: Actor
) -> None:
    campaign = make_campaign(session, actor)
    service.add_dnc(session, actor, "03-3000-0009", "")
    added = service.add_leads(
        session,
        actor,
        campaign.id,
        LeadsIn(phones=["０９０－２０００－０００１", "090-2000-0001", "12", "03-3000-0009", "0312345000"]),
    )
    assert added.added == 2
    assert [(s.phone, s.reason) for s in added.scrubbed] == [
        ("+819020000001", "duplicate"),
        ("12", "invalid"),
        ("+81330000009", "dnc"),
    ]
    leads = service.list_leads(session, actor, campaign.id)
    assert [lead.phone for lead in leads] == ["+819020000001", "+81312345000"]
    again = service.add_leads(session, actor, campaign.id, LeadsIn(phones=["090-2000-0001"]))
    assert again.added == 0 and again.scrubbed[0].reason == "duplicate"


def test_adding_leads_with_customer_ids_checks_the_customers(
    session: Session, actor: Actor, other_actor: Actor
) -> None:
    campaign = make_campaign(session, actor)
    ours = customer_with(session, actor, "090-3000-0001")
    theirs = customer_with(session, other_actor, "090-3000-0002")
    with pytest.raises(ValidationFailed):
        service.add_leads(session, actor, campaign.id, LeadsIn(phones=["090-3000-0002"], customer_ids=[theirs]))
    suspended = customer_with(session, actor, "090-3000-0003", do_not_contact=True)
    added = service.add_leads(
        session, actor, campaign.id, LeadsIn(phones=["090-3000-0001", "090-3000-0009"], customer_ids=[ours, suspended])
    )
    assert added.added == 1 and [s.reason for s in added.scrubbed] == ["do_not_contact"]


# -- reservation and outcomes


def test_reserve_hands_out_each_lead_once_and_only_in_a_running_campaign(session: Session, actor: Actor) -> None:
    campaign = make_campaign(session, actor)
    service.add_leads(session, actor, campaign.id, LeadsIn(phones=["090-4000-0001", "090-4000-0002"]))
    assert service.reserve_next(session, actor, campaign.id, "a1", MONDAY_10).reason == "the campaign is draft"
    service.set_status(session, actor, campaign.id, "running")
    first = service.reserve_next(session, actor, campaign.id, "a1", MONDAY_10).lead
    second = service.reserve_next(session, actor, campaign.id, "a2", MONDAY_10).lead
    assert first is not None and second is not None and first.id != second.id
    assert first.reserved_by == "a1" and first.status == "in_progress"
    assert service.reserve_next(session, actor, campaign.id, "a3", MONDAY_10).reason == "no lead is due"
    saturday = MONDAY_10 - timedelta(days=2)
    assert service.reserve_next(session, actor, campaign.id, "a3", saturday).reason == "outside the calling window"


def test_given_a_number_put_on_the_dnc_list_after_loading_then_it_is_excluded_at_reservation(
    session: Session, actor: Actor
) -> None:
    campaign = running(session, actor, ["090-4000-0001"])
    service.add_dnc(session, actor, "090-4000-0001", "苦情")
    found = service.reserve_next(session, actor, campaign.id, "a1", MONDAY_10)
    assert found.lead is None
    lead = session.scalars(select(Lead).where(Lead.campaign_id == campaign.id)).one()
    assert lead.status == "excluded" and lead.last_result == "dnc"


def as_agent(actor: Actor, name: str) -> Actor:
    return Actor(tenant_id=actor.tenant_id, username=name, role=Role.OPERATOR)


def test_a_busy_line_is_retried_after_the_rules_delay_until_the_attempts_run_out(
    session: Session, actor: Actor
) -> None:
    rules = RetryRules(delays={"busy": 10}, max_attempts=2, max_per_day=5)
    campaign = running(session, actor, ["090-4000-0001"], retry_rules=rules)
    agent = as_agent(actor, "a1")
    lead = service.reserve_next(session, agent, campaign.id, "a1", MONDAY_10).lead
    assert lead is not None
    service.record_outcome(session, agent, campaign.id, lead.id, OutcomeIn(result="busy"), MONDAY_10)
    assert lead.status == "in_progress" and lead.next_call_at == MONDAY_10 + timedelta(minutes=10)
    assert lead.reserved_by is None and lead.attempts == 1
    assert service.reserve_next(session, agent, campaign.id, "a1", MONDAY_10 + timedelta(minutes=9)).lead is None
    later = MONDAY_10 + timedelta(minutes=10)
    assert service.reserve_next(session, agent, campaign.id, "a1", later).lead is lead
    service.record_outcome(session, agent, campaign.id, lead.id, OutcomeIn(result="busy"), later)
    assert lead.status == "unworkable" and lead.attempts == 2


def test_the_daily_cap_moves_a_lead_to_the_next_day(session: Session, actor: Actor) -> None:
    rules = RetryRules(delays={"no_answer": 0}, max_attempts=5, max_per_day=1)
    campaign = running(session, actor, ["090-4000-0001"], retry_rules=rules)
    agent = as_agent(actor, "a1")
    lead = service.reserve_next(session, agent, campaign.id, "a1", MONDAY_10).lead
    assert lead is not None
    service.record_outcome(session, agent, campaign.id, lead.id, OutcomeIn(result="no_answer"), MONDAY_10)
    assert service.reserve_next(session, agent, campaign.id, "a1", MONDAY_10 + timedelta(hours=1)).lead is None
    assert lead.next_call_at is not None and lead.next_call_at > MONDAY_10
    assert service.reserve_next(session, agent, campaign.id, "a1", MONDAY_10 + timedelta(days=1)).lead is lead


def test_a_personal_callback_goes_to_its_agent_first_and_to_no_one_else(session: Session, actor: Actor) -> None:
    campaign = running(session, actor, ["090-4000-0001", "090-4000-0002"])
    a1, a2 = as_agent(actor, "a1"), as_agent(actor, "a2")
    lead = service.reserve_next(session, a1, campaign.id, "a1", MONDAY_10).lead
    assert lead is not None
    at = MONDAY_10 + timedelta(hours=2)
    service.record_outcome(session, a1, campaign.id, lead.id, OutcomeIn(result="answered", callback_at=at), MONDAY_10)
    assert lead.status == "callback" and lead.callback_agent == "a1"
    other = service.reserve_next(session, a2, campaign.id, "a2", at).lead
    assert other is not None and other.id != lead.id
    assert service.reserve_next(session, a1, campaign.id, "a1", at).lead is lead


def test_a_refusal_excludes_the_number_from_every_campaign_until_an_admin_lifts_it(
    session: Session, actor: Actor
) -> None:
    campaign = running(session, actor, ["090-4000-0001"])
    other = running(session, actor, ["090-4000-0001"], name="別件")
    agent = as_agent(actor, "a1")
    lead = service.reserve_next(session, agent, campaign.id, "a1", MONDAY_10).lead
    assert lead is not None
    service.record_outcome(session, agent, campaign.id, lead.id, OutcomeIn(result="answered", refusal=True), MONDAY_10)
    assert lead.status == "excluded"
    refusal = session.scalars(select(Refusal).where(Refusal.tenant_id == actor.tenant_id)).one()
    assert (refusal.scope, refusal.e164, refusal.campaign_id, refusal.by) == (
        "company",
        "+819040000001",
        campaign.id,
        "a1",
    )
    assert service.reserve_next(session, agent, other.id, "a1", MONDAY_10).lead is None
    supervisor = Actor(tenant_id=actor.tenant_id, username="sv", role=Role.SUPERVISOR)
    with pytest.raises(Forbidden):
        service.lift_refusal(session, supervisor, refusal.id, "本人から再開の依頼", MONDAY_10)
    admin = Actor(tenant_id=actor.tenant_id, username="adm", role=Role.ADMIN)
    with pytest.raises(ValidationFailed):
        service.lift_refusal(session, admin, refusal.id, "  ", MONDAY_10)
    service.lift_refusal(session, admin, refusal.id, "本人から再開の依頼", MONDAY_10)
    assert refusal.lifted_by == "adm" and service.scrub(session, actor, None, ["+819040000001"]) == {}
    actions = audit_actions(session, actor)
    assert "campaign.refusal" in actions and "campaign.refusal.lift" in actions


def test_an_outcome_is_only_taken_from_the_agent_holding_the_lead(session: Session, actor: Actor) -> None:
    campaign = running(session, actor, ["090-4000-0001"])
    lead = service.reserve_next(session, as_agent(actor, "a1"), campaign.id, "a1", MONDAY_10).lead
    assert lead is not None
    with pytest.raises(Conflict):
        service.record_outcome(
            session, as_agent(actor, "a2"), campaign.id, lead.id, OutcomeIn(result="busy"), MONDAY_10
        )


def test_only_an_admin_records_a_night_reason(session: Session, actor: Actor) -> None:
    supervisor = Actor(tenant_id=actor.tenant_id, username="sv", role=Role.SUPERVISOR)
    late = [Window(weekday=0, start="18:00", end="21:30")]
    data = CampaignCreate(name="夜", kind="research", caller_id="0312345678", windows=late, night_reason="理由")
    with pytest.raises(Forbidden) as err:
        service.create_campaign(session, supervisor, data)
    assert err.value.errors[0]["field"] == "night_reason"
    admin = Actor(tenant_id=actor.tenant_id, username="adm", role=Role.ADMIN)
    campaign = service.create_campaign(session, admin, data)
    service.update_campaign(session, supervisor, campaign.id, CampaignUpdate(goal=10))  # other fields: fine


def test_a_lead_settled_on_the_way_does_not_stop_the_reservation_of_the_next(session: Session, actor: Actor) -> None:
    campaign = running(session, actor, ["090-4000-0001", "090-4000-0002"])
    service.add_dnc(session, actor, "090-4000-0001", "")
    lead = service.reserve_next(session, actor, campaign.id, "a1", MONDAY_10).lead
    assert lead is not None and lead.phone == "+819040000002"
    first = session.scalars(select(Lead).where(Lead.phone == "+819040000001")).one()
    assert (first.status, first.last_result, first.reserved_by) == ("excluded", "dnc", None)


def test_scrubbing_a_long_list_costs_a_few_queries_not_one_per_number(session: Session, actor: Actor) -> None:
    campaign = make_campaign(session, actor)
    customer_with(session, actor, "090-1000-0001", do_not_contact=True)
    numbers = ["+819010000001", *(f"+8180{n:08d}" for n in range(2500))]
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    connection = session.connection()
    event.listen(connection, "before_cursor_execute", count)
    try:
        reasons = service.scrub(session, actor, campaign, numbers)
    finally:
        event.remove(connection, "before_cursor_execute", count)
    assert reasons == {"+819010000001": "do_not_contact"}
    # Four lookups (customers' flags, refusals, the DNC list, the campaign's leads), a query per thousand numbers.
    assert len(statements) <= 4 * 3, statements


def test_reservation_settles_blocked_leads_with_scrubs_reason_and_the_leads_own_customer(
    session: Session, actor: Actor
) -> None:
    campaign = make_campaign(session, actor)
    complainer = customer_with(session, actor, "090-1000-0009")
    phones = ["090-4000-0001", "090-4000-0002", "090-4000-0003"]
    service.add_leads(session, actor, campaign.id, LeadsIn(phones=phones, customer_ids=[None, None, complainer]))
    service.set_status(session, actor, campaign.id, "running")
    # After loading: the owner of the first number asks to stop (and the number is put on the DNC list too: the
    # owner's flag is named first, as scrub names it); the customer of the third lead complains.
    customer_with(session, actor, "090-4000-0001", do_not_contact=True)
    service.add_dnc(session, actor, "090-4000-0001", "")
    customers.get_customer(session, actor, complainer).outbound_excluded = True
    session.flush()
    lead = service.reserve_next(session, actor, campaign.id, "a1", MONDAY_10).lead
    assert lead is not None and lead.phone == "+819040000002"
    assert service.reserve_next(session, actor, campaign.id, "a2", MONDAY_10).reason == "no lead is due"
    settled = {row.phone: (row.status, row.last_result) for row in session.scalars(select(Lead))}
    assert settled["+819040000001"] == ("excluded", "do_not_contact")
    assert settled["+819040000003"] == ("excluded", "outbound_excluded")


def test_a_reservation_is_three_statements_the_campaign_the_lead_with_its_checks_and_the_update(
    session: Session, actor: Actor
) -> None:
    campaign = running(session, actor, ["090-4000-0001", "090-4000-0002"])
    first = service.reserve_next(session, actor, campaign.id, "a1", MONDAY_10).lead  # the statement built once
    assert first is not None
    session.expunge_all()  # the campaign is read again, as in a request of its own
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    connection = session.connection()
    event.listen(connection, "before_cursor_execute", count)
    try:
        lead = service.reserve_next(session, actor, campaign.id, "a2", MONDAY_10).lead
    finally:
        event.remove(connection, "before_cursor_execute", count)
    assert lead is not None and lead.id != first.id and lead.reserved_by == "a2"
    assert len(statements) == 3, statements
