"""Rate plans and quotes over HTTP. Per-campaign / per-month cost reports come with the CDR side (issue 4)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from kakehashi.auth.guard import AdminActor, ManagerActor, StaffActor
from kakehashi.billing import service
from kakehashi.billing.schemas import ChargeOut, PlanCreate, PlanOut, QuoteIn
from kakehashi.kit.api import IdPath, SessionDep, respond

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])


@router.get("/plans", response_model=list[PlanOut])
def list_plans(session: SessionDep, actor: ManagerActor) -> Response:
    """The tenant's rate plans, newest effective date first."""
    return respond([PlanOut.model_validate(p) for p in service.list_plans(session, actor)], actor)


@router.post("/plans", response_model=PlanOut, status_code=status.HTTP_201_CREATED)
def create_plan(session: SessionDep, actor: AdminActor, body: PlanCreate) -> Response:
    """A new per-second tariff from ``effective_from`` on (a change of tariff is a new plan)."""
    plan = service.create_plan(session, actor, body)
    return respond(PlanOut.model_validate(plan), actor, status_code=status.HTTP_201_CREATED)


@router.get("/plans/{plan_id}", response_model=PlanOut)
def get_plan(session: SessionDep, actor: ManagerActor, plan_id: IdPath) -> Response:
    return respond(PlanOut.model_validate(service.get_plan(session, actor, plan_id)), actor)


@router.post("/quote", response_model=ChargeOut)
def quote(session: SessionDep, actor: StaffActor, body: QuoteIn) -> Response:
    """What a call of ``seconds`` to (outbound) or from (inbound, on our toll-free line) ``number`` costs today."""
    return respond(ChargeOut.model_validate(service.quote(session, actor, body)), actor)
