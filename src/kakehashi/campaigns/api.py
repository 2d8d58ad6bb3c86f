"""``/api/v1/campaigns``: outbound campaigns. Supervisors and admins manage them, the do-not-call list and the
refusals (admins lift a refusal); operators reserve leads and record outcomes; client viewers read their
tenant's campaigns and leads (numbers masked)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from kakehashi.auth.guard import AdminActor, AnyRoleActor, ManagerActor, StaffActor
from kakehashi.campaigns import live, service
from kakehashi.campaigns.schemas import (
    CampaignCreate,
    CampaignOut,
    CampaignUpdate,
    DncIn,
    DncOut,
    LeadOut,
    LeadsAdded,
    LeadsIn,
    LeadStatus,
    LiftIn,
    OutcomeIn,
    PacingOut,
    RefusalOut,
    Reservation,
)
from kakehashi.kit.api import MAX_OFFSET, IdPath, SessionDep, respond
from kakehashi.kit.db import utcnow

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])


# Fixed paths before /{campaign_id}.
@router.get("/dnc", response_model=list[DncOut])
def list_dnc(session: SessionDep, actor: ManagerActor) -> Response:
    """The center's do-not-call list."""
    return respond([DncOut.model_validate(r) for r in service.list_dnc(session, actor)], actor)


@router.post("/dnc", response_model=DncOut, status_code=201)
def add_dnc(session: SessionDep, actor: ManagerActor, body: DncIn) -> Response:
    """Put a number on the do-not-call list: no campaign of the tenant calls it."""
    row = service.add_dnc(session, actor, body.phone, body.reason)
    return respond(DncOut.model_validate(row), actor, status_code=201)


@router.delete("/dnc/{dnc_id}", status_code=204)
def remove_dnc(session: SessionDep, actor: ManagerActor, dnc_id: IdPath) -> Response:
    service.remove_dnc(session, actor, dnc_id)
    return Response(status_code=204)


@router.get("/pacing", response_model=list[PacingOut])
def pacing(request: Request, session: SessionDep, actor: ManagerActor) -> Response:
    """The predictive campaigns being paced now, for the wallboard's first paint (then ``campaign.pacing`` events):
    dial level, calls in flight and waiting, agents, abandon rates over 24 hours and 30 days against the campaign's
    target. Empty when nothing is paced or no phone system runs."""
    rows = service.pacing_view(session, actor, live.pacing(request, actor.tenant_id))
    return respond(rows, actor)


@router.get("/refusals", response_model=list[RefusalOut])
def list_refusals(
    session: SessionDep, actor: ManagerActor, active: Annotated[bool, Query(description="only those in force")] = False
) -> Response:
    """Refusals (特定商取引法 Art.17): numbers no campaign calls again until an admin lifts the refusal."""
    rows = service.list_refusals(session, actor, active_only=active)
    return respond([RefusalOut.model_validate(r) for r in rows], actor)


@router.post("/refusals/{refusal_id}/lift", response_model=RefusalOut)
def lift_refusal(session: SessionDep, actor: AdminActor, refusal_id: IdPath, body: LiftIn) -> Response:
    """End a refusal (the person asked to be called again), with the reason; audited."""
    row = service.lift_refusal(session, actor, refusal_id, body.reason, utcnow())
    return respond(RefusalOut.model_validate(row), actor)


@router.get("", response_model=list[CampaignOut])
def list_campaigns(session: SessionDep, actor: AnyRoleActor) -> Response:
    return respond([CampaignOut.model_validate(c) for c in service.list_campaigns(session, actor)], actor)


@router.post("", response_model=CampaignOut, status_code=201)
def create_campaign(session: SessionDep, actor: ManagerActor, body: CampaignCreate) -> Response:
    """A new campaign, in ``draft``. A window inside 21:00–08:00 needs ``night_reason``."""
    return respond(CampaignOut.model_validate(service.create_campaign(session, actor, body)), actor, status_code=201)


@router.get("/{campaign_id}", response_model=CampaignOut)
def get_campaign(session: SessionDep, actor: AnyRoleActor, campaign_id: IdPath) -> Response:
    return respond(CampaignOut.model_validate(service.get_campaign(session, actor, campaign_id)), actor)


@router.patch("/{campaign_id}", response_model=CampaignOut)
def update_campaign(session: SessionDep, actor: ManagerActor, campaign_id: IdPath, body: CampaignUpdate) -> Response:
    return respond(CampaignOut.model_validate(service.update_campaign(session, actor, campaign_id, body)), actor)


@router.post("/{campaign_id}/start", response_model=CampaignOut)
def start_campaign(session: SessionDep, actor: ManagerActor, campaign_id: IdPath) -> Response:
    return respond(CampaignOut.model_validate(service.set_status(session, actor, campaign_id, "running")), actor)


@router.post("/{campaign_id}/pause", response_model=CampaignOut)
def pause_campaign(session: SessionDep, actor: ManagerActor, campaign_id: IdPath) -> Response:
    return respond(CampaignOut.model_validate(service.set_status(session, actor, campaign_id, "paused")), actor)


@router.post("/{campaign_id}/stop", response_model=CampaignOut)
def stop_campaign(session: SessionDep, actor: ManagerActor, campaign_id: IdPath) -> Response:
    return respond(CampaignOut.model_validate(service.set_status(session, actor, campaign_id, "stopped")), actor)


@router.post("/{campaign_id}/leads", response_model=LeadsAdded)
def add_leads(session: SessionDep, actor: ManagerActor, campaign_id: IdPath, body: LeadsIn) -> Response:
    """Add numbers to the call list; each one not added comes back with its reason (never dropped silently)."""
    return respond(service.add_leads(session, actor, campaign_id, body), actor)


@router.get("/{campaign_id}/leads", response_model=list[LeadOut])
def list_leads(
    session: SessionDep,
    actor: AnyRoleActor,
    campaign_id: IdPath,
    status: LeadStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """A page of the call list (numbers masked for client viewers)."""
    leads = service.list_leads(session, actor, campaign_id, status=status, limit=limit, offset=offset)
    return respond([LeadOut.model_validate(lead) for lead in leads], actor)


@router.post("/{campaign_id}/reserve", response_model=Reservation)
def reserve_next(session: SessionDep, actor: StaffActor, campaign_id: IdPath) -> Response:
    """Hand the caller the next lead to call (``lead`` null with the ``reason`` when there is none now)."""
    found = service.reserve_next(session, actor, campaign_id, actor.username, utcnow())
    lead = LeadOut.model_validate(found.lead) if found.lead is not None else None
    return respond(Reservation(lead=lead, reason=found.reason), actor)


@router.post("/{campaign_id}/leads/{lead_id}/outcome", response_model=LeadOut)
def record_outcome(
    session: SessionDep, actor: StaffActor, campaign_id: IdPath, lead_id: IdPath, body: OutcomeIn
) -> Response:
    """The result of the caller's attempt on a lead they reserved."""
    lead = service.record_outcome(session, actor, campaign_id, lead_id, body, utcnow())
    return respond(LeadOut.model_validate(lead), actor)
