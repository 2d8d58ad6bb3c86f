"""Target extraction (ターゲット抽出): saved segments over the customer master, their counts, their runs into a
campaign, and their schedule.

Each domain owns its part of a criteria and answers with a statement of customer ids (tenant-scoped, not run):
customers (age, gender, address, rank, custom fields), orders (recency, frequency, monetary, product), calls
(the last result code), complaints (history). This module composes them into one statement and runs it once: a
count is one ``SELECT count(*)`` and one grouped statement of the scrub reasons; a run loads only the customer
id, main number and block of each customer not yet in the campaign.

A run adds each customer's **main number** — the one the customer master marks primary (the first number entered
when none is marked) — as one lead; other numbers are not added (one person, one lead: a refusal on the main
number ends the person's calls). Every matching customer not added is reported with the reason: scrubbed
(``campaigns.service.scrub``: do-not-contact, outbound-excluded, refused, DNC, duplicate number; plus
``no_phone``) or already in the campaign (counted).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session, sessionmaker

from kakehashi.audit import service as audit
from kakehashi.calls import service as calls
from kakehashi.campaigns import service as campaigns
from kakehashi.campaigns.models import CampaignList, Segment
from kakehashi.campaigns.repository import CampaignRepository
from kakehashi.campaigns.segment_repository import SegmentRepository, due_segment_ids
from kakehashi.campaigns.segment_schemas import (
    Criteria,
    DueRun,
    Schedule,
    ScrubbedCustomer,
    SegmentCount,
    SegmentIn,
    SegmentRun,
    SegmentUpdate,
)
from kakehashi.complaints import service as complaints
from kakehashi.customers import service as customers
from kakehashi.dispositions import service as dispositions
from kakehashi.kit.clock import BUSINESS_TZ
from kakehashi.kit.context import Actor
from kakehashi.kit.db import unit_of_work
from kakehashi.kit.errors import Conflict, DomainError, NotFound, ValidationFailed, field_error
from kakehashi.orders import service as orders

log = logging.getLogger(__name__)

#: The reasons a count reports, in the order they are checked.
COUNT_REASONS = ("do_not_contact", "outbound_excluded", "no_phone", "refused", "dnc")
#: A live count's statements end after this long (PostgreSQL); the editor shows the error and the user narrows.
COUNT_TIMEOUT_MS = 10_000
#: The user the scheduler acts as (in the audit log and as the lists' creator).
SCHEDULER = "segment-scheduler"


# -- the statement


def _ago(now: datetime, days: int | None) -> datetime | None:
    return None if days is None else now - timedelta(days=days)


def customer_ids(
    session: Session,
    actor: Actor,
    criteria: Criteria,
    now: datetime,
    *,
    among: tuple[Select[Any], ...] = (),
    exclude: tuple[Select[Any], ...] = (),
) -> Select[Any]:
    """The statement of the ids of the tenant's customers the criteria select (not run), limited to those in
    every ``among`` and in no ``exclude`` statement of ids. ``now`` (aware) fixes "today" (Japanese date, for
    ages and complaint days) and the "last N days" of orders."""
    if now.tzinfo is None:
        raise ValueError("customer_ids needs a timezone-aware now")
    today = now.astimezone(BUSINESS_TZ).date()
    include: list[Select[Any]] = list(among)
    excluded: list[Select[Any]] = list(exclude)
    if (r := criteria.recency) is not None:
        if r.within_days is not None:
            include.append(orders.customer_ids_ordered(session, actor, since=_ago(now, r.within_days)))
        if r.older_than_days is not None:
            include.append(orders.customer_ids_ordered(session, actor))
            excluded.append(orders.customer_ids_ordered(session, actor, since=_ago(now, r.older_than_days)))
    for group, by in (
        (criteria.frequency, orders.customer_ids_by_order_count),
        (criteria.monetary, orders.customer_ids_by_order_total),
    ):
        if group is None:
            continue
        since = _ago(now, group.period_days)
        if group.min:  # at least one order: those in the range
            include.append(by(session, actor, low=group.min, high=group.max, since=since))
        elif group.max is not None:  # zero allowed: everyone but those above the range
            excluded.append(by(session, actor, low=group.max + 1, high=None, since=since))
    if (p := criteria.product) is not None:
        bought = orders.customer_ids_by_product(
            session, actor, codes=p.codes, names=p.names, since=_ago(now, p.period_days)
        )
        (include if p.bought else excluded).append(bought)
    if criteria.last_contact is not None:
        include.append(calls.customer_ids_by_last_result(session, actor, criteria.last_contact.results))
    if (c := criteria.complaints) is not None:
        since_day = today - timedelta(days=c.within_days) if c.within_days is not None else None
        cases = complaints.customer_ids_with_complaints(
            session, actor, kinds=c.kinds, since=since_day, open_only=c.open_only
        )
        (include if c.has else excluded).append(cases)
    age = criteria.age
    return customers.segment_ids(
        session,
        actor,
        today=today,
        age_min=age.min if age else None,
        age_max=age.max if age else None,
        genders=criteria.genders,
        prefectures=criteria.prefectures,
        cities=criteria.cities,
        ranks=criteria.ranks,
        custom=[c.model_dump() for c in criteria.custom],
        custom_field="criteria.custom",
        include=include,
        exclude=excluded,
    )


def validate(session: Session, actor: Actor, criteria: Criteria) -> None:
    """What the schema cannot check: the result codes are the tenant's (custom fields are checked when the
    statement is built). A 422 naming each bad field."""
    if criteria.last_contact is not None:
        # Retired codes and the system's own count too: past calls keep them.
        known = {d.code for d in dispositions.list_dispositions(session, actor, retired=True)}
        known |= {d.code for d in dispositions.SYSTEM_CODES}
        errors = [
            field_error(f"criteria.last_contact.results.{i}", "not a result code of this center")
            for i, code in enumerate(criteria.last_contact.results)
            if code not in known
        ]
        if errors:
            raise ValidationFailed("unknown result codes", errors=errors)


# -- counting


def count(session: Session, actor: Actor, criteria: Criteria, now: datetime) -> SegmentCount:
    """How many customers the criteria select, how many a run could add, and why the others could not be called
    (the first reason that applies). Counts only: nothing personal leaves, so the read is not audited."""
    validate(session, actor, criteria)
    repo = SegmentRepository(session, actor.tenant_id)
    repo.limit_time(COUNT_TIMEOUT_MS)
    repo.plan_for_whole_segments()
    ids = customer_ids(session, actor, criteria, now)
    by_reason = repo.counts_by_reason(customers.outreach_rows(session, actor, ids))
    scrubbed = {reason: by_reason.get(reason, 0) for reason in COUNT_REASONS}
    callable_ = by_reason.get(None, 0)
    return SegmentCount(matching=callable_ + sum(scrubbed.values()), callable=callable_, scrubbed_by_reason=scrubbed)


# -- the schedule


def next_run(schedule: Schedule | dict[str, Any] | None, after: datetime) -> datetime | None:
    """The first scheduled moment strictly after ``after`` (aware): a listed weekday at ``time``, Japan time.
    None without a schedule."""
    if schedule is None:
        return None
    plan = schedule if isinstance(schedule, Schedule) else Schedule.model_validate(schedule)
    hours, minutes = (int(x) for x in plan.time.split(":"))
    local = after.astimezone(BUSINESS_TZ)
    for days in range(8):
        day: date = local.date() + timedelta(days=days)
        if day.weekday() not in plan.weekdays:
            continue
        at = datetime.combine(day, time(hours, minutes), tzinfo=BUSINESS_TZ)
        if at > after:
            return at
    raise AssertionError("a weekly schedule always has a next run")  # pragma: no cover


# -- saved segments


def get_segment(session: Session, actor: Actor, segment_id: int) -> Segment:
    segment = SegmentRepository(session, actor.tenant_id).get(segment_id)
    if segment is None:
        raise NotFound(f"segment {segment_id} not found")
    return segment


def list_segments(session: Session, actor: Actor) -> list[Segment]:
    return SegmentRepository(session, actor.tenant_id).all()


def _name_free(repo: SegmentRepository, name: str, segment_id: int | None = None) -> None:
    other = repo.by_name(name)
    if other is not None and other.id != segment_id:
        raise Conflict("a segment of that name exists", errors=[field_error("name", "already used")])


def _check_campaign(session: Session, actor: Actor, campaign_id: int | None) -> None:
    if campaign_id is None:
        return
    try:
        campaigns.get_campaign(session, actor, campaign_id)
    except NotFound:
        raise ValidationFailed("no such campaign", errors=[field_error("campaign_id", "no such campaign")]) from None


def _check_schedule(schedule: Schedule | None, campaign_id: int | None) -> None:
    if schedule is not None and campaign_id is None:
        raise ValidationFailed(
            "a scheduled segment needs its campaign", errors=[field_error("campaign_id", "required with a schedule")]
        )


def _check_criteria(session: Session, actor: Actor, criteria: Criteria, now: datetime) -> None:
    validate(session, actor, criteria)
    customer_ids(session, actor, criteria, now)  # builds it: the custom fields are checked


def create_segment(session: Session, actor: Actor, data: SegmentIn, now: datetime) -> Segment:
    """Save a criteria (checked against the tenant's custom fields and result codes) with its campaign and
    schedule; ``next_run_at`` is the schedule's first moment after ``now``. Audited."""
    repo = SegmentRepository(session, actor.tenant_id)
    _name_free(repo, data.name)
    _check_campaign(session, actor, data.campaign_id)
    _check_schedule(data.schedule, data.campaign_id)
    _check_criteria(session, actor, data.criteria, now)
    segment = repo.add(
        Segment(
            name=data.name,
            criteria=data.criteria.model_dump(exclude_defaults=True),
            campaign_id=data.campaign_id,
            schedule=data.schedule.model_dump() if data.schedule else None,
            next_run_at=next_run(data.schedule, now),
            created_by=actor.username,
        )
    )
    audit.record(session, actor, "segment.create", resource="segment", resource_id=segment.id)
    return segment


def update_segment(session: Session, actor: Actor, segment_id: int, data: SegmentUpdate, now: datetime) -> Segment:
    """Change what is given (``schedule``/``campaign_id`` null: removed); the next run is computed again."""
    segment = get_segment(session, actor, segment_id)
    changes = data.model_dump(exclude_unset=True)
    repo = SegmentRepository(session, actor.tenant_id)
    if data.name is not None:
        _name_free(repo, data.name, segment.id)
        segment.name = data.name
    if data.criteria is not None:
        _check_criteria(session, actor, data.criteria, now)
        segment.criteria = data.criteria.model_dump(exclude_defaults=True)
    if "campaign_id" in changes:
        _check_campaign(session, actor, data.campaign_id)
        segment.campaign_id = data.campaign_id
    if "schedule" in changes:
        segment.schedule = data.schedule.model_dump() if data.schedule else None
    schedule = Schedule.model_validate(segment.schedule) if segment.schedule else None
    _check_schedule(schedule, segment.campaign_id)
    segment.next_run_at = next_run(schedule, now)
    session.flush()
    audit.record(
        session, actor, "segment.update", resource="segment", resource_id=segment.id, detail={"fields": sorted(changes)}
    )
    return segment


def delete_segment(session: Session, actor: Actor, segment_id: int) -> None:
    """Delete a segment; the lists its runs made stay (their leads' origin), without the link."""
    segment = get_segment(session, actor, segment_id)
    repo = SegmentRepository(session, actor.tenant_id)
    repo.unlink_lists(segment.id)
    session.delete(segment)
    session.flush()
    audit.record(session, actor, "segment.delete", resource="segment", resource_id=segment_id)


def count_segment(session: Session, actor: Actor, segment_id: int, now: datetime) -> SegmentCount:
    segment = get_segment(session, actor, segment_id)
    return count(session, actor, Criteria.model_validate(segment.criteria), now)


# -- running a segment into a campaign


def run_segment(
    session: Session, actor: Actor, segment_id: int, now: datetime, *, campaign_id: int | None = None
) -> SegmentRun:
    """Add the segment's customers not yet in the campaign (``campaign_id``, default the segment's) as leads, on
    a new list "segment <name> <date>": each customer's main number, scrubbed at the moment; every customer not
    added is listed with the reason, those already in the campaign are counted. Audited."""
    segment = get_segment(session, actor, segment_id)
    target = campaign_id or segment.campaign_id
    if target is None:
        raise ValidationFailed("which campaign?", errors=[field_error("campaign_id", "required: the segment has none")])
    campaign = campaigns.get_campaign(session, actor, target)
    if campaign.status == "stopped":
        raise Conflict("a stopped campaign takes no more leads", errors=[field_error("campaign_id", "stopped")])
    criteria = Criteria.model_validate(segment.criteria)
    validate(session, actor, criteria)
    repo = SegmentRepository(session, actor.tenant_id)
    in_campaign = repo.customer_ids_in_campaign(campaign.id)
    repo.plan_for_whole_segments()
    skipped = repo.count(customer_ids(session, actor, criteria, now, among=(in_campaign,)))
    rows = session.execute(
        customers.outreach_rows(session, actor, customer_ids(session, actor, criteria, now, exclude=(in_campaign,)))
    ).all()
    repo.plan_for_whole_segments(on=False)  # the scrub's look-ups by number want their index nested loops
    scrubbed: list[ScrubbedCustomer] = []
    to_scrub: dict[str, int] = {}
    for customer_id, e164, block in rows:
        if block is not None:
            scrubbed.append(ScrubbedCustomer(customer_id=customer_id, phone=e164, reason=block))
        elif e164 is None:
            scrubbed.append(ScrubbedCustomer(customer_id=customer_id, phone=None, reason="no_phone"))
        else:
            to_scrub[e164] = customer_id
    # The campaign's own scrub, as for an uploaded list: flags again, refusals, the DNC list, numbers already in it.
    reasons = campaigns.scrub(session, actor, campaign, list(to_scrub))
    leads: list[dict[str, Any]] = []
    for e164, customer_id in to_scrub.items():
        if (reason := reasons.get(e164)) is not None:
            scrubbed.append(ScrubbedCustomer(customer_id=customer_id, phone=e164, reason=reason))
        else:
            leads.append(
                {
                    "campaign_id": campaign.id,
                    "customer_id": customer_id,
                    "phone": e164,
                    "status": "new",
                    "attempts": 0,
                    "attempts_today": 0,
                }
            )
    scrubbed.sort(key=lambda s: s.customer_id)
    day = now.astimezone(BUSINESS_TZ).date().isoformat()
    listed = repo.add_list(
        CampaignList(
            campaign_id=campaign.id,
            name=f"segment {segment.name} {day}"[:200],
            segment_id=segment.id,
            created_by=actor.username,
            created_at=now,
            rows_total=len(rows),
            rows_loaded=len(leads),
            rows_bad=0,
            rows_scrubbed=len(scrubbed),
        )
    )
    CampaignRepository(session, actor.tenant_id).insert_leads([{**lead, "list_id": listed.id} for lead in leads])
    segment.last_run_at = now
    session.flush()
    report = SegmentRun(
        campaign_id=campaign.id,
        list_id=listed.id,
        added=len(leads),
        scrubbed=scrubbed,
        skipped_already_in_campaign=skipped,
    )
    audit.record(
        session,
        actor,
        "segment.run",
        resource="segment",
        resource_id=segment.id,
        detail={
            "campaign_id": campaign.id,
            "list_id": listed.id,
            "added": len(leads),
            "scrubbed": len(scrubbed),
            "skipped": skipped,
        },
    )
    return report


# -- the scheduler


def run_due_segments(factory: sessionmaker[Session], now: datetime) -> list[DueRun]:
    """Run every scheduled segment due at ``now`` (aware), each in its own transaction and tenant, and set its
    next run. A segment another process is running is passed over (``SKIP LOCKED``); one that fails (its
    campaign stopped or deleted, a custom field gone) is reported and still moves to its next run, so it does
    not fail again every minute."""
    with unit_of_work(factory) as session:
        due = due_segment_ids(session, now)
    done: list[DueRun] = []
    for segment_id, tenant_id in due:
        actor = Actor(tenant_id=tenant_id, username=SCHEDULER, origin="scheduler")
        try:
            with unit_of_work(factory) as session:
                segment = SegmentRepository(session, tenant_id).get(segment_id, lock=True)
                if segment is None or segment.next_run_at is None or segment.next_run_at > now:
                    continue  # run meanwhile by another process, or unscheduled
                report = run_segment(session, actor, segment_id, now)
                segment.next_run_at = next_run(segment.schedule, now)
                done.append(
                    DueRun(
                        segment_id=segment_id,
                        tenant_id=tenant_id,
                        ran_at=now,
                        report=report,
                        next_run_at=segment.next_run_at,
                    )
                )
        except DomainError as exc:
            log.warning("scheduled segment %s of tenant %s failed: %s", segment_id, tenant_id, exc.detail)
            with unit_of_work(factory) as session:
                segment = SegmentRepository(session, tenant_id).get(segment_id, lock=True)
                if segment is not None:
                    segment.next_run_at = next_run(segment.schedule, now)
                    audit.record(
                        session,
                        actor,
                        "segment.run.failed",
                        resource="segment",
                        resource_id=segment_id,
                        detail={"error": exc.detail},
                    )
                    done.append(
                        DueRun(
                            segment_id=segment_id,
                            tenant_id=tenant_id,
                            ran_at=now,
                            error=exc.detail,
                            next_run_at=segment.next_run_at,
                        )
                    )
    return done
