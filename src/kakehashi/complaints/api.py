from __future__ import annotations

from fastapi import APIRouter, status

from kakehashi.complaints import service
from kakehashi.complaints.schemas import ComplaintCreate, ComplaintOut
from kakehashi.kit.api import ActorDep, SessionDep

router = APIRouter(prefix="/api/v1", tags=["complaints"])


@router.get("/customers/{customer_id}/complaints", response_model=list[ComplaintOut])
def list_complaints(session: SessionDep, actor: ActorDep, customer_id: int) -> list[ComplaintOut]:
    """Every return and complaint of the customer, newest first."""
    return [ComplaintOut.model_validate(c) for c in service.history(session, actor, customer_id)]


@router.post("/customers/{customer_id}/complaints", response_model=ComplaintOut, status_code=status.HTTP_201_CREATED)
def record_complaint(session: SessionDep, actor: ActorDep, customer_id: int, body: ComplaintCreate) -> ComplaintOut:
    """A complaint raises the caution flag and excludes the customer from outbound lists."""
    return ComplaintOut.model_validate(service.record_complaint(session, actor, customer_id, body))


@router.post("/complaints/{complaint_id}/resolve", response_model=ComplaintOut)
def resolve_complaint(session: SessionDep, actor: ActorDep, complaint_id: int) -> ComplaintOut:
    return ComplaintOut.model_validate(service.resolve(session, actor, complaint_id))
