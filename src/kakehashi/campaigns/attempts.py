"""Attempts: one agent's try at one lead, from the card on the desk to the saved result (ADR 0023).

The life of an attempt: :func:`open_next` reserves the next due lead for the agent and opens the attempt (the
card: in preview mode the agent reads it and presses dial or skips; in progressive mode the dialer dials at
once). :func:`check_dialable` repeats every rule at the moment of dialing (the card may have waited). The
dialer reports the call (:func:`dialed`) and the line's result (:func:`line_result`): a line that reached nobody
settles the lead by the retry rules and ends the attempt. A person reached: the agent talks, confirms the
opening statement was given (:func:`confirm_opening`, 特定商取引法 Art.16) and saves one of the campaign's result
codes (:func:`finish`), whose flags decide the lead: success/final/contact → done, refusal → the number is
blocked (Art.17), do-not-call → on the center's DNC list, callback → at the agent's time, unworkable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from kakehashi.audit import service as audit
from kakehashi.calls import service as calls
from kakehashi.campaigns import service
from kakehashi.campaigns.models import Campaign, Lead, LeadAttempt
from kakehashi.campaigns.repository import CampaignRepository
from kakehashi.campaigns.schemas import OutcomeIn, ResultCode, RetryRules, ScrubReason
from kakehashi.dispositions import service as dispositions
from kakehashi.kit.context import Actor
from kakehashi.kit.errors import Conflict, NotFound, ValidationFailed, field_error
from kakehashi.kit.phone import InvalidPhone, normalize_phone
from kakehashi.routing import service as routing

#: Flags of a tenant's result code when the campaign lists none, by the code's kind (``dispositions``).
FLAGS_BY_KIND: dict[str, dict[str, bool]] = {
    "sale": {"human": True, "contact": True, "success": True, "final": True},
    "contact": {"human": True, "contact": True},
    "callback": {"human": True, "contact": True, "callback": True},
    "no_contact": {"human": True},
    "other": {"human": True},
}
#: Why a number may not be dialled (``campaigns.service.scrub``).
SCRUB_REASONS = frozenset(get_args(ScrubReason))
#: Line results that end an attempt without a person (the lead follows the retry rules).
UNREACHED = ("busy", "no_answer", "machine", "invalid", "failed")


def system_actor(tenant_id: int) -> Actor:
    """The dialer acting for a tenant (trusted, like every system job)."""
    return Actor(tenant_id=tenant_id, username="dialer", origin="system")


# -- who works what


def works(session: Session, actor: Actor, campaign: Campaign, agent: str) -> bool:
    """Whether ``agent`` works ``campaign``: named on it, a member of one of its queues, or — a campaign that
    names nobody — any agent."""
    if not campaign.agents and not campaign.queues:
        return True
    if agent in campaign.agents:
        return True
    return bool(set(campaign.queues) & routing.queues_of_agent(session, actor, agent))


def campaigns_of(session: Session, actor: Actor, agent: str) -> list[Campaign]:
    """The running campaigns ``agent`` works."""
    return [
        c for c in service.list_campaigns(session, actor) if c.status == "running" and works(session, actor, c, agent)
    ]


# -- result codes


def result_codes(session: Session, actor: Actor, campaign: Campaign) -> list[ResultCode]:
    """The codes an agent may save for this campaign, with their flags: the campaign's own list, or else the
    tenant's result codes with flags from their kind (:data:`FLAGS_BY_KIND`)."""
    if campaign.result_codes:
        return [ResultCode.model_validate(c) for c in campaign.result_codes]
    return [
        ResultCode(code=d.code, **FLAGS_BY_KIND.get(d.kind, {"human": True}))
        for d in dispositions.list_dispositions(session, actor)
    ]


def needs_opening(code: ResultCode) -> bool:
    """Art.16: a result that says a conversation took place (contact, success) needs the opening confirmed."""
    return code.contact or code.success


# -- the attempt's life


@dataclass(frozen=True, slots=True)
class Opened:
    attempt: LeadAttempt | None
    reason: str | None = None


def current(session: Session, actor: Actor, agent: str) -> LeadAttempt | None:
    """The agent's attempt still open (its result not saved), if any."""
    stmt = (
        select(LeadAttempt)
        .where(LeadAttempt.tenant_id == actor.tenant_id, LeadAttempt.agent == agent, LeadAttempt.ended_at.is_(None))
        .order_by(LeadAttempt.id.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def get(session: Session, actor: Actor, attempt_id: int) -> LeadAttempt:
    attempt = session.get(LeadAttempt, attempt_id)
    if attempt is None or attempt.tenant_id != actor.tenant_id:
        raise NotFound(f"attempt {attempt_id} not found")
    return attempt


def by_call(session: Session, tenant_id: int, call_ref: str) -> LeadAttempt | None:
    stmt = select(LeadAttempt).where(LeadAttempt.tenant_id == tenant_id, LeadAttempt.call_ref == call_ref)
    return session.scalars(stmt).first()


def lead_of(session: Session, attempt: LeadAttempt) -> Lead:
    lead = session.get(Lead, attempt.lead_id)
    assert lead is not None  # leads are never deleted
    return lead


def campaign_of(session: Session, attempt: LeadAttempt) -> Campaign:
    campaign = session.get(Campaign, attempt.campaign_id)
    assert campaign is not None
    return campaign


def open_next(session: Session, actor: Actor, campaign_id: int, agent: str, now: datetime) -> Opened:
    """Reserve the next due lead of the campaign for ``agent`` and open the attempt on it (the card), or say
    why there is none. The agent must work the campaign and have no open attempt."""
    campaign = service.get_campaign(session, actor, campaign_id)
    if not works(session, actor, campaign, agent):
        raise Conflict(f"{agent} does not work this campaign")
    if current(session, actor, agent) is not None:
        raise Conflict("finish the current lead first")
    found = service.reserve_next(session, actor, campaign.id, agent, now)
    if found.lead is None:
        return Opened(None, found.reason)
    lead = found.lead
    attempt = LeadAttempt(
        tenant_id=actor.tenant_id, campaign_id=campaign.id, lead_id=lead.id, list_id=lead.list_id, agent=agent,
        mode=campaign.dial_mode, started_at=now, talk_seconds=Decimal(0), wrap_seconds=Decimal(0),
    )  # fmt: skip
    session.add(attempt)
    session.flush()
    return Opened(attempt)


#: The name predictive dialing reserves leads under until a person answers and an agent takes the call.
DIALER = "__dialer__"
#: No number whose person was abandoned is dialled again by the predictive dialer this soon (Ofcom: 72 h).
ABANDON_REDIAL_BLOCK = timedelta(hours=72)


def open_unattended(session: Session, actor: Actor, campaign_id: int, now: datetime, count: int) -> list[LeadAttempt]:
    """Predictive: reserve up to ``count`` due leads for the dialer (no agent yet) and open an attempt on each.
    Fewer (or none) when fewer are due; callbacks promised by an agent stay theirs."""
    campaign = service.get_campaign(session, actor, campaign_id)
    opened: list[LeadAttempt] = []
    if campaign.status != "running" or not service.calling_window_open(campaign, now):
        return opened
    rules = RetryRules.model_validate(campaign.retry_rules)
    for _ in range(count):
        found = service.reserve_in(session, campaign, DIALER, now, rules)
        if found.lead is None:
            break
        lead = found.lead
        attempt = LeadAttempt(
            tenant_id=actor.tenant_id, campaign_id=campaign.id, lead_id=lead.id, list_id=lead.list_id, agent=None,
            mode="predictive", started_at=now, talk_seconds=Decimal(0), wrap_seconds=Decimal(0),
        )  # fmt: skip
        session.add(attempt)
        opened.append(attempt)
    session.flush()
    return opened


def check_dialable(session: Session, actor: Actor, attempt: LeadAttempt, now: datetime) -> str | None:
    """Why the attempt's number may not be dialled now, or None: the campaign runs, its calling window is open,
    and the number is not blocked (DNC, refusal, APPI suspension, excluded customer) — all checked again now."""
    campaign = campaign_of(session, attempt)
    lead = lead_of(session, attempt)
    if attempt.call_ref is not None or attempt.result is not None:
        return "the lead was dialled already"
    if campaign.status != "running":
        return f"the campaign is {campaign.status}"
    if not service.calling_window_open(campaign, now):
        return "outside the calling window"
    # As at reservation: every block of the number for this campaign (refusals by its scope), no duplicate check.
    blocked = service.scrub(session, actor, campaign, [lead.phone], duplicates=False).get(lead.phone)
    if blocked is None and lead.customer_id is not None:
        blocked = service._customer_blocked(session, actor, lead.customer_id)
    return blocked


def dialed(session: Session, tenant_id: int, attempt_id: int, call_ref: str, driver: str) -> None:
    """The dialer placed the call: the attempt and the call know each other (the call and its CDR carry the
    campaign and the lead)."""
    attempt = session.get(LeadAttempt, attempt_id)
    if attempt is None or attempt.tenant_id != tenant_id:
        return
    attempt.call_ref = call_ref
    calls.tag_outbound(session, driver, call_ref, campaign_id=attempt.campaign_id, lead_id=attempt.lead_id)


def line_result(
    session: Session, tenant_id: int, attempt_id: int, result: str, at: datetime, *, agent: str = ""
) -> LeadAttempt | None:
    """What the line did. ``answered``: a person, the agent talks (the attempt waits for the agent's result; a
    predictive call's attempt becomes ``agent``'s now). Anything else ends the attempt: the lead is settled by the
    retry rules (an abandoned call — a person who got no agent — is retried like no answer, and a predictive
    campaign's dialer leaves the number alone for 72 hours)."""
    attempt = session.get(LeadAttempt, attempt_id)
    if attempt is None or attempt.tenant_id != tenant_id or attempt.ended_at is not None:
        return None
    if result == "answered":
        attempt.result, attempt.answered_at, attempt.human = "answered", at, True
        if attempt.agent is None and agent:
            attempt.agent = agent
            lead_of(session, attempt).reserved_by = agent
        session.flush()
        return attempt
    attempt.result, attempt.ended_at = result, at
    if result == "abandoned":
        attempt.human, attempt.answered_at = True, attempt.answered_at or at
    retry_as = "no_answer" if result == "abandoned" else result
    lead = _settle(session, system_actor(tenant_id), attempt, OutcomeIn.model_validate({"result": retry_as}), at)
    if result == "abandoned" and attempt.mode == "predictive" and lead.next_call_at is not None:
        lead.next_call_at = max(lead.next_call_at, at + ABANDON_REDIAL_BLOCK)
    return attempt


def confirm_opening(session: Session, actor: Actor, attempt_id: int, agent: str, now: datetime) -> LeadAttempt:
    """The agent gave the opening statement (特定商取引法 Art.16) on this call: logged with the time, audited."""
    attempt = _own_open(session, actor, attempt_id, agent)
    if attempt.opening_confirmed_at is None:
        attempt.opening_confirmed_at = now
        session.flush()
        audit.record(session, actor, "campaign.opening.confirm", resource="lead_attempt", resource_id=attempt.id)
    return attempt


def finish(
    session: Session, actor: Actor, attempt_id: int, agent: str, code: str, now: datetime, *, driver: str,
    callback_at: datetime | None = None, callback_personal: bool = True,
) -> LeadAttempt:  # fmt: skip
    """The agent saves the call's result code: the attempt takes its flags, the lead follows them. A code that
    says there was a conversation needs the opening confirmed first (Art.16, 422 on ``opening``); a callback
    code needs ``callback_at``."""
    attempt = _own_open(session, actor, attempt_id, agent)
    campaign = campaign_of(session, attempt)
    chosen = next((c for c in result_codes(session, actor, campaign) if c.code == code.strip()), None)
    if chosen is None:
        raise ValidationFailed("not one of this campaign's result codes", errors=[field_error("code", "unknown")])
    if attempt.result is None or attempt.result == "skipped":
        raise Conflict("the lead was not dialled: skip it instead")
    if attempt.result != "answered" and chosen.human:
        raise ValidationFailed(
            "nobody answered this call", errors=[field_error("code", f"the line was {attempt.result}")]
        )
    if needs_opening(chosen) and attempt.opening_confirmed_at is None:
        raise ValidationFailed(
            "confirm that you gave the opening statement first (特定商取引法 第16条)",
            errors=[field_error("opening", "not confirmed")],
        )
    if chosen.callback and callback_at is None:
        raise ValidationFailed("pick the time to call back", errors=[field_error("callback_at", "required")])
    if callback_at is not None and callback_at <= now:
        raise ValidationFailed("the callback time has passed", errors=[field_error("callback_at", "in the past")])
    attempt.disposition = chosen.code
    attempt.human = chosen.human
    attempt.contact, attempt.success, attempt.refusal = chosen.contact, chosen.success, chosen.refusal
    attempt.ended_at = now
    call = calls.call_by_ref(session, driver, attempt.call_ref) if attempt.call_ref else None
    if call is not None:
        attempt.talk_seconds = _seconds(call.connected_at, call.wrap_up_at or call.ended_at)
        attempt.wrap_seconds = _seconds(call.wrap_up_at, now)
    if chosen.dnc:
        lead = lead_of(session, attempt)
        if not CampaignRepository(session, actor.tenant_id).dnc_numbers([lead.phone]):
            service.add_dnc(session, actor, lead.phone, f"{campaign.name}: {chosen.code}")
    outcome = OutcomeIn(
        result="answered",
        refusal=chosen.refusal,
        callback_at=callback_at if chosen.callback else None,
        callback_personal=callback_personal,
        final=chosen.final or chosen.dnc,
        success=chosen.success,
    )
    lead = _settle(session, actor, attempt, outcome, now, agent=agent)
    if chosen.unworkable:
        lead.status, lead.next_call_at = "unworkable", None
    elif not (chosen.contact or chosen.final or chosen.success or chosen.refusal or chosen.dnc or chosen.callback):
        _retry_like_no_answer(campaign, lead, now)
    if call is not None and call.state == "wrap_up":
        calls.finish_wrap_up(session, system_actor(actor.tenant_id), call.id, chosen.code, now)
    session.flush()
    return attempt


def skip(session: Session, actor: Actor, attempt_id: int, agent: str, reason: str, now: datetime) -> LeadAttempt:
    """Preview: the agent passes this lead without dialing (with the reason): it goes back to the list as it
    was, not counted as an attempt."""
    attempt = _own_open(session, actor, attempt_id, agent)
    if attempt.call_ref is not None:
        raise Conflict("the lead was dialled: save its result")
    if not reason.strip():
        raise ValidationFailed("give the reason", errors=[field_error("reason", "required")])
    lead = _undialled(session, attempt, reason.strip(), now)
    audit.record(session, actor, "campaign.lead.skip", resource="lead", resource_id=lead.id,
                 customer_id=lead.customer_id, detail={"reason": attempt.skip_reason})  # fmt: skip
    return attempt


def give_back(session: Session, actor: Actor, attempt_id: int, reason: str, now: datetime) -> None:
    """The attempt cannot be dialled (:func:`check_dialable`'s ``reason``): a number blocked meanwhile leaves
    the list (``excluded`` with the reason); otherwise the lead goes back untouched. The attempt ends skipped."""
    release_undialled(session, actor.tenant_id, attempt_id, reason, now)
    if reason in SCRUB_REASONS:
        lead = lead_of(session, get(session, actor, attempt_id))
        lead.status, lead.last_result, lead.next_call_at = "excluded", reason, None


def release_undialled(session: Session, tenant_id: int, attempt_id: int, why: str, now: datetime) -> None:
    """The dialer could not place the call (the agent was taken by another call, the number became blocked):
    the attempt ends as skipped and the lead goes back untouched."""
    attempt = session.get(LeadAttempt, attempt_id)
    if attempt is None or attempt.tenant_id != tenant_id or attempt.ended_at is not None:
        return
    _undialled(session, attempt, why, now)


def _undialled(session: Session, attempt: LeadAttempt, why: str, now: datetime) -> Lead:
    """End an attempt that was never dialled as skipped (with ``why``); its lead goes back as it was."""
    attempt.result, attempt.skip_reason, attempt.ended_at = "skipped", why[:200], now
    lead = lead_of(session, attempt)
    lead.reserved_by = lead.reserved_at = None
    if lead.status == "in_progress" and lead.attempts == 0:
        lead.status = "new"
    session.flush()
    return lead


def close_unsaved(session: Session, tenant_id: int, call_ref: str, at: datetime) -> LeadAttempt | None:
    """The wrap-up time ran out before the agent saved a result: the attempt ends with the person reached but
    no result; the lead is tried again like no answer."""
    attempt = by_call(session, tenant_id, call_ref)
    if attempt is None or attempt.ended_at is not None:
        return None
    attempt.ended_at = at
    lead = _settle(session, system_actor(tenant_id), attempt, OutcomeIn(result="answered"), at)
    _retry_like_no_answer(campaign_of(session, attempt), lead, at)
    return attempt


def manual_dial_check(
    session: Session, actor: Actor, number: str, campaign_id: int | None
) -> tuple[str, str, str | None]:
    """For a manual dial from the desk: (the number in E.164, the caller ID to show, why it may not be called
    or None). Checked like a lead at dialing: DNC, refusals in force, APPI suspension, outbound exclusion."""
    try:
        e164 = normalize_phone(number)
    except InvalidPhone as exc:
        raise ValidationFailed("not a phone number", errors=[field_error("number", str(exc))]) from exc
    campaign = service.get_campaign(session, actor, campaign_id) if campaign_id is not None else None
    # For a campaign: its refusal scope; by hand without one: any refusal in force blocks.
    blocked = service.scrub(session, actor, campaign, [e164], duplicates=False).get(e164)
    if campaign is not None:
        caller_id = campaign.caller_id
    else:
        numbers = routing.tenant_numbers(session, actor)
        if not numbers:
            raise Conflict("the center has no number to call from: add one (routing) or dial for a campaign")
        caller_id = numbers[0]
    return e164, caller_id, blocked


def card(session: Session, actor: Actor, attempt: LeadAttempt) -> dict[str, Any]:
    """What the desk shows for an attempt: the campaign (opening statement, result codes, mode), the lead and
    where the attempt is. The lead's number is personal data: the read is audited."""
    campaign = campaign_of(session, attempt)
    lead = lead_of(session, attempt)
    audit.record(session, actor, "campaign.lead.card", resource="lead", resource_id=lead.id,
                 customer_id=lead.customer_id)  # fmt: skip
    return {
        "attempt_id": attempt.id,
        "stage": stage_of(attempt),
        "call_ref": attempt.call_ref,
        "result": attempt.result,
        "opening_confirmed_at": attempt.opening_confirmed_at,
        "campaign": {
            "id": campaign.id, "name": campaign.name, "kind": campaign.kind, "dial_mode": campaign.dial_mode,
            "opening_statement": campaign.opening_statement, "preview_autodial_s": campaign.preview_autodial_s,
            "result_codes": [c.model_dump() for c in result_codes(session, actor, campaign)],
        },
        "lead": {
            "id": lead.id, "phone": lead.phone, "customer_id": lead.customer_id, "status": lead.status,
            "attempts": lead.attempts, "last_result": lead.last_result,
        },
    }  # fmt: skip


def my_callbacks(session: Session, actor: Actor, agent: str, *, limit: int = 20) -> list[dict[str, Any]]:
    """The personal callbacks ``agent`` promised and has still to make, soonest first (the numbers are personal
    data: the read is audited when there are any)."""
    stmt = (
        select(Lead.id, Lead.campaign_id, Campaign.name, Lead.phone, Lead.next_call_at)
        .join(Campaign, Campaign.id == Lead.campaign_id)
        .where(Lead.tenant_id == actor.tenant_id, Lead.callback_agent == agent, Lead.status == "callback",
               Campaign.status.in_(("running", "paused")))
        .order_by(Lead.next_call_at, Lead.id)
        .limit(limit)
    )  # fmt: skip
    rows = [
        {"lead_id": r[0], "campaign_id": r[1], "campaign": r[2], "phone": r[3], "at": r[4]}
        for r in session.execute(stmt)
    ]
    if rows:
        audit.record(session, actor, "campaign.callbacks.read", resource="lead", detail={"rows": len(rows)})
    return rows


def stage_of(attempt: LeadAttempt) -> str:
    """preview (not dialled) → dialing → talking (a person answered) → done."""
    if attempt.ended_at is not None:
        return "done"
    if attempt.call_ref is None:
        return "preview"
    return "talking" if attempt.result == "answered" else "dialing"


# -- inside


def _own_open(session: Session, actor: Actor, attempt_id: int, agent: str) -> LeadAttempt:
    attempt = get(session, actor, attempt_id)
    if attempt.agent != agent:
        raise NotFound(f"attempt {attempt_id} not found")  # not telling whose it is
    if attempt.ended_at is not None:
        raise Conflict("the attempt is finished")
    return attempt


def _settle(
    session: Session, actor: Actor, attempt: LeadAttempt, outcome: OutcomeIn, now: datetime, *, agent: str | None = None
) -> Lead:
    campaign = campaign_of(session, attempt)
    lead = lead_of(session, attempt)
    return service.apply_outcome(session, actor, campaign, lead, outcome, now, agent=agent or attempt.agent or "")


def _retry_like_no_answer(campaign: Campaign, lead: Lead, now: datetime) -> None:
    """A person answered but nothing came of it (not the right person, no result saved): try again later as
    after no answer, within the caps."""
    rules = RetryRules.model_validate(campaign.retry_rules)
    delay = rules.delay("no_answer")
    if delay is None or lead.attempts >= rules.max_attempts:
        lead.status, lead.next_call_at = "unworkable", None
    else:
        lead.status, lead.next_call_at = "in_progress", now + timedelta(minutes=delay)
    lead.last_result = "answered"


def _seconds(start: datetime | None, end: datetime | None) -> Decimal:
    if start is None or end is None or end < start:
        return Decimal(0)
    return Decimal(str(round((end - start).total_seconds(), 3)))
