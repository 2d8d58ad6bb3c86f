"""Outbound campaigns: settings and status, the calling window, scrubbing, leads, reservation and outcomes.

Rules of the law this module keeps (docs/user-guide/campaigns.md, ADR 0022):

- 特定商取引法 Art.17 (再勧誘の禁止): a person who said no is not called again — a refusal is stored for the
  whole tenant (``scope`` "company") and every campaign scrubs against it until an admin lifts it with a reason.
- APPI 利用停止: a customer with ``do_not_contact`` is never called; ``outbound_excluded`` (complaints) neither.
- Calls between 21:00 and 08:00 (Japan time) only with a written reason (``night_reason``).

A lead is handed to one agent at a time (:func:`reserve_next`, ADR 0022), and every check (scrubbing, window,
attempt caps) is made again at that moment: numbers added to the DNC list after loading are never dialled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

import holidays
from sqlalchemy.orm import Session

from kakehashi.audit import service as audit
from kakehashi.campaigns.compliance import lead_history as lead_history  # re-exported (the screen pop, the desk)
from kakehashi.campaigns.compliance import refusal_for as refusal_for
from kakehashi.campaigns.models import Campaign, DncNumber, Lead, Refusal
from kakehashi.campaigns.repository import CampaignRepository
from kakehashi.campaigns.schemas import (
    AmdSettings,
    CampaignCreate,
    CampaignUpdate,
    LeadsAdded,
    LeadsIn,
    OutcomeIn,
    PacingOut,
    PredictiveSettings,
    ResultCode,
    RetryRules,
    Scrubbed,
    Window,
    clock_minutes,
)
from kakehashi.customers import service as customers
from kakehashi.dispositions import service as dispositions
from kakehashi.kit.clock import BUSINESS_TZ
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.errors import Conflict, Forbidden, NotFound, ValidationFailed, field_error
from kakehashi.kit.phone import InvalidPhone, normalize_phone

#: The night (Japan time) in which no window may lie without ``night_reason``: 21:00–08:00.
NIGHT_START, NIGHT_END = 21 * 60, 8 * 60
#: The customer flags (APPI do_not_contact, outbound_excluded) as SQL from their domain, read by the reservation in
#: the same statement as the lead: of the number's owner, then of the lead's customer (ADR 0022).
_CUSTOMER_BLOCKS = (customers.contact_block_of_number, customers.contact_block_of_customer)
#: Which status changes are allowed, from → to.
TRANSITIONS = {
    "draft": {"running", "stopped"},
    "running": {"paused", "stopped"},
    "paused": {"running", "stopped"},
    "stopped": set[str](),
}


# -- the calling window


@lru_cache(maxsize=64)
def _holidays_of(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("JP", years=year).keys())


def is_holiday(day: date) -> bool:
    """A Japanese public holiday (祝日, 振替休日, 国民の休日), as ``ivr.calendar`` counts them."""
    return day in _holidays_of(day.year)


def in_night(minute: int) -> bool:
    return minute >= NIGHT_START or minute < NIGHT_END


def window_touches_night(window: Window) -> bool:
    return clock_minutes(window.start) < NIGHT_END or clock_minutes(window.end) > NIGHT_START


def calling_window_open(campaign: Campaign, at: datetime) -> bool:
    """Whether the campaign may call at ``at`` (aware; read in Japan time): a window of that weekday holds it,
    it is not a public holiday (unless ``holidays_off`` is False), and it is not night without a reason."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("calling_window_open needs a timezone-aware datetime")
    local = at.astimezone(BUSINESS_TZ)
    if campaign.holidays_off and is_holiday(local.date()):
        return False
    minute = local.hour * 60 + local.minute
    if in_night(minute) and not (campaign.night_reason or "").strip():
        return False
    return any(
        w["weekday"] == local.weekday() and clock_minutes(w["start"]) <= minute < clock_minutes(w["end"])
        for w in campaign.windows
    )


def _check_night_reason_by_admin(actor: Actor, night_reason: str | None) -> None:
    """Only an admin records (or changes) why a campaign may call at night (issue 17)."""
    if (night_reason or "").strip() and actor.role not in (None, Role.ADMIN):
        raise Forbidden("only an admin may allow calls at night", errors=[field_error("night_reason", "admin only")])


def _check_night(windows: list[Window], night_reason: str | None) -> None:
    if (night_reason or "").strip():
        return
    errors = [
        field_error(f"windows.{i}", "inside 21:00–08:00: give night_reason to allow it")
        for i, w in enumerate(windows)
        if window_touches_night(w)
    ]
    if errors:
        errors.append(field_error("night_reason", "required for a window inside 21:00–08:00"))
        raise ValidationFailed("calling at night needs a reason", errors=errors)


# -- campaigns


def _caller_id(raw: str) -> str:
    try:
        return normalize_phone(raw)
    except InvalidPhone as exc:
        raise ValidationFailed(
            "the caller id is not a phone number", errors=[field_error("caller_id", str(exc))]
        ) from exc


def _result_codes(session: Session, actor: Actor, codes: list[ResultCode]) -> list[dict[str, Any]]:
    """The campaign's result codes, each an active disposition of the tenant, once."""
    known = dispositions.active_codes(session, actor)
    errors = [field_error(f"result_codes.{i}.code", "not an active result code") for i, c in enumerate(codes)
              if c.code not in known]  # fmt: skip
    seen: set[str] = set()
    for i, c in enumerate(codes):
        if c.code in seen:
            errors.append(field_error(f"result_codes.{i}.code", "listed twice"))
        seen.add(c.code)
    if errors:
        raise ValidationFailed("unknown result codes", errors=errors)
    return [c.model_dump() for c in codes]


def get_campaign(session: Session, actor: Actor, campaign_id: int) -> Campaign:
    campaign = CampaignRepository(session, actor.tenant_id).get(campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


def list_campaigns(session: Session, actor: Actor) -> list[Campaign]:
    return CampaignRepository(session, actor.tenant_id).all()


def _name_free(repo: CampaignRepository, name: str, campaign_id: int | None = None) -> None:
    other = repo.by_name(name)
    if other is not None and other.id != campaign_id:
        raise Conflict("a campaign of that name exists", errors=[field_error("name", "already used")])


def create_campaign(session: Session, actor: Actor, data: CampaignCreate) -> Campaign:
    repo = CampaignRepository(session, actor.tenant_id)
    _check_night_reason_by_admin(actor, data.night_reason)
    _check_night(data.windows, data.night_reason)
    caller_id = _caller_id(data.caller_id)
    _name_free(repo, data.name)
    campaign = Campaign(
        tenant_id=actor.tenant_id,
        name=data.name,
        kind=data.kind,
        caller_id=caller_id,
        dial_mode=data.dial_mode,
        status="draft",
        goal=data.goal,
        owner=data.owner or actor.username,
        opening_statement=data.opening_statement,
        windows=[w.model_dump() for w in data.windows],
        holidays_off=data.holidays_off,
        night_reason=(data.night_reason or "").strip() or None,
        retry_rules=data.retry_rules.model_dump(),
        agents=list(dict.fromkeys(data.agents)),
        queues=list(dict.fromkeys(data.queues)),
        result_codes=_result_codes(session, actor, data.result_codes),
        ring_timeout_s=data.ring_timeout_s,
        preview_autodial_s=data.preview_autodial_s,
        product_line=data.product_line or None,
        refusal_scope=data.refusal_scope,
        predictive=data.predictive.model_dump(),
        amd=data.amd.model_dump(),
    )
    session.add(campaign)
    session.flush()
    audit.record(session, actor, "campaign.create", resource="campaign", resource_id=campaign.id)
    return campaign


def update_campaign(session: Session, actor: Actor, campaign_id: int, data: CampaignUpdate) -> Campaign:
    campaign = get_campaign(session, actor, campaign_id)
    changes = data.model_dump(exclude_unset=True)
    windows = data.windows if data.windows is not None else [Window(**w) for w in campaign.windows]
    night_reason = changes.get("night_reason", campaign.night_reason)
    if "night_reason" in changes and (data.night_reason or None) != campaign.night_reason:
        _check_night_reason_by_admin(actor, data.night_reason)
    _check_night(windows, night_reason)
    for field in ("name", "kind", "dial_mode", "owner", "opening_statement", "holidays_off"):
        if changes.get(field) is not None:
            setattr(campaign, field, changes[field])
    if "name" in changes and data.name is not None:
        _name_free(CampaignRepository(session, actor.tenant_id), data.name, campaign.id)
    if "goal" in changes:
        campaign.goal = data.goal
    if data.caller_id is not None:
        campaign.caller_id = _caller_id(data.caller_id)
    if data.windows is not None:
        campaign.windows = [w.model_dump() for w in data.windows]
    if "night_reason" in changes:
        campaign.night_reason = (data.night_reason or "").strip() or None
    if data.retry_rules is not None:
        campaign.retry_rules = data.retry_rules.model_dump()
    if data.agents is not None:
        campaign.agents = list(dict.fromkeys(data.agents))
    if data.queues is not None:
        campaign.queues = list(dict.fromkeys(data.queues))
    if data.result_codes is not None:
        campaign.result_codes = _result_codes(session, actor, data.result_codes)
    for field in ("ring_timeout_s", "refusal_scope"):
        if changes.get(field) is not None:
            setattr(campaign, field, changes[field])
    if "preview_autodial_s" in changes:
        campaign.preview_autodial_s = data.preview_autodial_s
    if "product_line" in changes:
        campaign.product_line = data.product_line or None
    if data.predictive is not None:
        campaign.predictive = data.predictive.model_dump()
    if data.amd is not None:
        campaign.amd = data.amd.model_dump()
    session.flush()
    audit.record(
        session,
        actor,
        "campaign.update",
        resource="campaign",
        resource_id=campaign.id,
        detail={"fields": sorted(changes)},
    )
    return campaign


def set_status(session: Session, actor: Actor, campaign_id: int, status: str) -> Campaign:
    """Start (``running``), pause or stop a campaign; a stopped campaign stays stopped. Audited."""
    campaign = get_campaign(session, actor, campaign_id)
    if status not in TRANSITIONS[campaign.status]:
        raise Conflict(f"a {campaign.status} campaign cannot become {status}")
    if status == "running" and not campaign.windows:
        raise ValidationFailed("a campaign needs a calling window to run", errors=[field_error("windows", "empty")])
    if status == "running" and campaign.dial_mode == "predictive" and not predictive_settings(campaign).abandon_message:
        raise ValidationFailed(
            "a predictive campaign needs the message an abandoned call hears (the company and a number to call back)",
            errors=[field_error("predictive.abandon_message", "empty")],
        )
    before, campaign.status = campaign.status, status
    session.flush()
    audit.record(
        session,
        actor,
        "campaign.status",
        resource="campaign",
        resource_id=campaign.id,
        detail={"from": before, "to": status},
    )
    return campaign


def predictive_settings(campaign: Campaign) -> PredictiveSettings:
    """The campaign's predictive settings (defaults for a campaign made before they existed)."""
    return PredictiveSettings.model_validate(campaign.predictive or {})


def amd_settings(campaign: Campaign) -> AmdSettings:
    return AmdSettings.model_validate(campaign.amd or {})


def pacing_view(session: Session, actor: Actor, snapshots: list[dict[str, Any]]) -> list[PacingOut]:
    """The dialer's live pacing snapshots of the actor's tenant (``LiveDialer.pacing``) with each campaign's name
    and abandon target, in the campaigns' order; a snapshot of a campaign the tenant does not have is left out."""
    live = {int(s["campaign_id"]): s for s in snapshots}
    if not live:
        return []
    found = []
    for campaign in CampaignRepository(session, actor.tenant_id).all():
        snapshot = live.get(campaign.id)
        if snapshot is None:
            continue
        target = predictive_settings(campaign).abandon_target
        found.append(PacingOut.model_validate({**snapshot, "name": campaign.name, "abandon_target": target}))
    return found


# -- scrubbing


def scrub(
    session: Session, actor: Actor, campaign: Campaign | None, e164s: list[str], *, duplicates: bool = True
) -> dict[str, str]:
    """Per number (E.164) the reason it may not be dialled; numbers that may be dialled are absent.

    In order: the customer asked to stop all use (``do_not_contact``, APPI), the customer is kept out of
    outbound calls (``outbound_excluded``), a refusal in force that blocks ``campaign`` (Art.17: a company-wide
    one, or one of the campaign's product line; with ``campaign`` None any refusal in force), the DNC list,
    already a lead of ``campaign`` (unless ``duplicates`` is False: at reservation the lead is its own)."""
    repo = CampaignRepository(session, actor.tenant_id)
    wanted = list(dict.fromkeys(e164s))
    reasons = customers.contact_blocks(session, actor, wanted)
    rest = [p for p in wanted if p not in reasons]
    line = campaign.product_line if campaign is not None else None
    for phone in repo.refused_numbers(rest, product_line=line, every_scope=campaign is None):
        reasons[phone] = "refused"
    rest = [p for p in rest if p not in reasons]
    for phone in repo.dnc_numbers(rest):
        reasons[phone] = "dnc"
    if campaign is not None and duplicates:
        rest = [p for p in rest if p not in reasons]
        for phone in repo.phones_in_campaign(campaign.id, rest):
            reasons[phone] = "duplicate"
    return reasons


def _customer_blocked(session: Session, actor: Actor, customer_id: int | None) -> str | None:
    if customer_id is None:
        return None
    customer = customers.get_customer(session, actor, customer_id)
    if customer.do_not_contact:
        return "do_not_contact"
    return "outbound_excluded" if customer.outbound_excluded else None


# -- leads


def add_leads(session: Session, actor: Actor, campaign_id: int, data: LeadsIn) -> LeadsAdded:
    """Normalize every number, scrub them, insert the rest in bulk. Nothing is dropped silently: each number
    not added is returned with its reason (``invalid``, a scrub reason, or ``duplicate`` within the list)."""
    campaign = get_campaign(session, actor, campaign_id)
    if campaign.status == "stopped":
        raise Conflict("a stopped campaign takes no more leads")
    ids = data.customer_ids or []
    if ids and len(ids) != len(data.phones):
        raise ValidationFailed(
            "customer_ids must match phones", errors=[field_error("customer_ids", "one per number (or null)")]
        )
    known = customers.existing_ids(session, actor, [i for i in ids if i is not None])
    unknown = [field_error(f"customer_ids.{n}", "no such customer") for n, i in enumerate(ids) if i and i not in known]
    if unknown:
        raise ValidationFailed("unknown customers", errors=unknown)
    scrubbed: list[Scrubbed] = []
    candidates: dict[str, int | None] = {}
    for n, raw in enumerate(data.phones):
        try:
            e164 = normalize_phone(raw)
        except InvalidPhone:
            scrubbed.append(Scrubbed(phone=raw, reason="invalid"))
            continue
        if e164 in candidates:
            scrubbed.append(Scrubbed(phone=e164, reason="duplicate"))
            continue
        candidates[e164] = ids[n] if ids else None
    reasons = scrub(session, actor, campaign, list(candidates))
    rows: list[dict[str, Any]] = []
    for e164, customer_id in candidates.items():
        reason = reasons.get(e164) or _customer_blocked(session, actor, customer_id)
        if reason is not None:
            scrubbed.append(Scrubbed(phone=e164, reason=reason))
            continue
        rows.append(
            {
                "campaign_id": campaign.id,
                "customer_id": customer_id,
                "phone": e164,
                "status": "new",
                "attempts": 0,
                "attempts_today": 0,
            }
        )
    CampaignRepository(session, actor.tenant_id).insert_leads(rows)
    session.flush()
    audit.record(
        session,
        actor,
        "campaign.leads.add",
        resource="campaign",
        resource_id=campaign.id,
        detail={"added": len(rows), "scrubbed": len(scrubbed)},
    )
    return LeadsAdded(added=len(rows), scrubbed=scrubbed)


def list_leads(
    session: Session, actor: Actor, campaign_id: int, *, status: str | None = None, limit: int = 100, offset: int = 0
) -> list[Lead]:
    """A page of the campaign's leads (their numbers are personal data: the read is audited)."""
    campaign = get_campaign(session, actor, campaign_id)
    leads = CampaignRepository(session, actor.tenant_id).leads(campaign.id, status=status, limit=limit, offset=offset)
    audit.record(
        session, actor, "campaign.leads.read", resource="campaign", resource_id=campaign.id, detail={"rows": len(leads)}
    )
    return leads


# -- reservation and outcomes


@dataclass(frozen=True, slots=True)
class Reserved:
    lead: Lead | None
    reason: str | None = None


def _local_day(at: datetime) -> date:
    return at.astimezone(BUSINESS_TZ).date()


def _next_local_midnight(at: datetime) -> datetime:
    day = _local_day(at) + timedelta(days=1)
    return datetime.combine(day, time(0, 0), tzinfo=BUSINESS_TZ)


def _today_count(lead: Lead, now: datetime) -> int:
    return lead.attempts_today if lead.attempts_day == _local_day(now) else 0


def reserve_next(session: Session, actor: Actor, campaign_id: int, agent: str, now: datetime) -> Reserved:
    """Hand one due lead of a running campaign to ``agent``, or none with the reason.

    Among the due leads (ADR 0022: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, SQLite's single writer), the first
    that passes every check *now* is marked reserved; a lead that fails one is settled on the way: scrubbed →
    ``excluded``, out of attempts → ``unworkable``, today's attempts used → due again tomorrow."""
    campaign = get_campaign(session, actor, campaign_id)
    if campaign.status != "running":
        return Reserved(None, f"the campaign is {campaign.status}")
    if not calling_window_open(campaign, now):
        return Reserved(None, "outside the calling window")
    return reserve_in(session, campaign, agent, now, RetryRules.model_validate(campaign.retry_rules))


def reserve_in(session: Session, campaign: Campaign, agent: str, now: datetime, rules: RetryRules) -> Reserved:
    """:func:`reserve_next` for a campaign already read and checked (running, window open) with its retry
    ``rules``: the dialer reserves many leads a tick and reads the campaign once for all of them."""
    repo = CampaignRepository(session, campaign.tenant_id)
    lock = session.get_bind().dialect.name == "postgresql"
    while True:
        # One statement a lead: the next due lead, locked, with the reason it may not be called (scrub's checks).
        found = repo.next_due(
            campaign.id, agent, now, product_line=campaign.product_line, lock=lock, blocks=_CUSTOMER_BLOCKS
        )
        if found is None:
            return Reserved(None, "no lead is due")
        lead, reason = found
        # The caps first, then the scrub's reason; a lead that fails is settled and the next one read.
        if lead.attempts >= rules.max_attempts:
            lead.status, lead.next_call_at = "unworkable", None
        elif _today_count(lead, now) >= rules.max_per_day:
            lead.next_call_at = _next_local_midnight(now)
        elif reason is not None:
            lead.status, lead.last_result, lead.next_call_at = "excluded", reason, None
        else:
            lead.status, lead.reserved_by, lead.reserved_at = "in_progress", agent, now
            session.flush()
            return Reserved(lead)
        session.flush()


def record_outcome(
    session: Session, actor: Actor, campaign_id: int, lead_id: int, data: OutcomeIn, now: datetime
) -> Lead:
    """The result of the attempt on a lead reserved by the actor: counts it, frees the lead and decides what next
    (done, a callback, a retry after the rule's delay, unworkable, excluded after a refusal)."""
    campaign = get_campaign(session, actor, campaign_id)
    lead = CampaignRepository(session, actor.tenant_id).lead(campaign.id, lead_id)
    if lead is None:
        raise NotFound(f"lead {lead_id} not found")
    if lead.reserved_by != actor.username:
        raise Conflict("the lead is not reserved by you")
    return apply_outcome(session, actor, campaign, lead, data, now, agent=actor.username)


def apply_outcome(
    session: Session, actor: Actor, campaign: Campaign, lead: Lead, data: OutcomeIn, now: datetime, *, agent: str
) -> Lead:
    """Count the attempt on ``lead`` (reserved by ``agent``), free it and decide what next — for
    :func:`record_outcome` and the dialer (``campaigns.attempts``), which has checked who holds the lead."""
    rules = RetryRules.model_validate(campaign.retry_rules)
    today = _local_day(now)
    lead.attempts_today = _today_count(lead, now) + 1
    lead.attempts_day = today
    lead.attempts += 1
    lead.last_result = "success" if data.success else data.result
    lead.reserved_by = lead.reserved_at = None
    lead.callback_agent = None
    if data.refusal:
        _refuse(session, actor, campaign, lead.phone, now)
        lead.status, lead.next_call_at = "excluded", None
    elif data.final or data.success:
        lead.status, lead.next_call_at = "done", None
    elif data.callback_at is not None:
        if lead.attempts >= rules.max_attempts:
            lead.status, lead.next_call_at = "unworkable", None
        else:
            lead.status, lead.next_call_at = "callback", data.callback_at
            lead.callback_agent = agent if data.callback_personal else None
    elif data.result == "answered":
        lead.status, lead.next_call_at = "done", None
    else:
        delay = rules.delay(data.result)
        if delay is None or lead.attempts >= rules.max_attempts:
            lead.status, lead.next_call_at = "unworkable", None
        else:
            lead.status, lead.next_call_at = "in_progress", now + timedelta(minutes=delay)
    session.flush()
    audit.record(
        session,
        actor,
        "campaign.lead.outcome",
        resource="lead",
        resource_id=lead.id,
        customer_id=lead.customer_id,
        detail={"result": lead.last_result, "status": lead.status},
    )
    return lead


def _refuse(session: Session, actor: Actor, campaign: Campaign, e164: str, now: datetime) -> None:
    """Record a refusal heard in ``campaign``: for its product line when the campaign says so (and has one),
    else company-wide. Nothing new when a refusal in force already blocks the same campaigns."""
    repo = CampaignRepository(session, actor.tenant_id)
    by_line = campaign.refusal_scope == "product_line" and campaign.product_line is not None
    line = campaign.product_line if by_line else None
    if repo.refusal_in_force(e164, product_line=line, every_scope=False) is not None:
        return
    refusal = Refusal(
        tenant_id=actor.tenant_id,
        e164=e164,
        scope="product_line" if by_line else "company",
        product_line=line,
        campaign_id=campaign.id,
        by=actor.username,
        at=now,
    )
    session.add(refusal)
    session.flush()
    audit.record(
        session, actor, "campaign.refusal", resource="refusal", resource_id=refusal.id, detail={"scope": refusal.scope}
    )


def list_refusals(session: Session, actor: Actor, *, active_only: bool = False) -> list[Refusal]:
    refusals = CampaignRepository(session, actor.tenant_id).refusals(active_only=active_only)
    audit.record(session, actor, "campaign.refusals.read", resource="refusal", detail={"rows": len(refusals)})
    return refusals


def lift_refusal(session: Session, actor: Actor, refusal_id: int, reason: str, now: datetime) -> Refusal:
    """An admin ends a refusal (the person asked to be called again), with the reason. Audited."""
    if actor.role not in (None, Role.ADMIN):
        raise Forbidden("only an admin may lift a refusal")
    if not reason.strip():
        raise ValidationFailed("give the reason", errors=[field_error("reason", "required")])
    refusal = CampaignRepository(session, actor.tenant_id).refusal(refusal_id)
    if refusal is None:
        raise NotFound(f"refusal {refusal_id} not found")
    if refusal.lifted_at is not None:
        raise Conflict("the refusal was already lifted")
    refusal.lifted_at, refusal.lifted_by, refusal.lifted_reason = now, actor.username, reason.strip()
    session.flush()
    audit.record(
        session,
        actor,
        "campaign.refusal.lift",
        resource="refusal",
        resource_id=refusal.id,
        detail={"reason": reason.strip()},
    )
    return refusal


# -- the do-not-call list


def list_dnc(session: Session, actor: Actor) -> list[DncNumber]:
    rows = CampaignRepository(session, actor.tenant_id).dnc_all()
    audit.record(session, actor, "campaign.dnc.read", resource="dnc", detail={"rows": len(rows)})
    return rows


def add_dnc(session: Session, actor: Actor, phone: str, reason: str) -> DncNumber:
    try:
        e164 = normalize_phone(phone)
    except InvalidPhone as exc:
        raise ValidationFailed("not a phone number", errors=[field_error("phone", str(exc))]) from exc
    repo = CampaignRepository(session, actor.tenant_id)
    if repo.dnc_numbers([e164]):
        raise Conflict("the number is on the list already", errors=[field_error("phone", "already listed")])
    row = DncNumber(tenant_id=actor.tenant_id, e164=e164, reason=reason, added_by=actor.username)
    session.add(row)
    session.flush()
    audit.record(session, actor, "campaign.dnc.add", resource="dnc", resource_id=row.id)
    return row


def remove_dnc(session: Session, actor: Actor, dnc_id: int) -> None:
    repo = CampaignRepository(session, actor.tenant_id)
    row = repo.dnc(dnc_id)
    if row is None:
        raise NotFound(f"do-not-call entry {dnc_id} not found")
    session.delete(row)
    session.flush()
    audit.record(session, actor, "campaign.dnc.remove", resource="dnc", resource_id=dnc_id)
