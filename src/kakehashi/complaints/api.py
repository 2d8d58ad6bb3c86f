from __future__ import annotations

from fastapi import APIRouter, Response, status

from kakehashi.auth.guard import ManagerActor, StaffActor
from kakehashi.complaints import service
from kakehashi.complaints.schemas import ComplaintCreate, ComplaintOut
from kakehashi.kit.api import IdPath, SessionDep, respond

router = APIRouter(prefix="/api/v1", tags=["complaints"])


@router.get("/customers/{customer_id}/complaints", response_model=list[ComplaintOut])
def list_complaints(session: SessionDep, actor: StaffActor, customer_id: IdPath) -> Response:
    """Every return and complaint of the customer, newest first."""
    return respond([ComplaintOut.model_validate(c) for c in service.history(session, actor, customer_id)], actor)


@router.post("/customers/{customer_id}/complaints", response_model=ComplaintOut, status_code=status.HTTP_201_CREATED)
def record_complaint(session: SessionDep, actor: StaffActor, customer_id: IdPath, body: ComplaintCreate) -> Response:
    """A complaint raises the caution flag and excludes the customer from outbound lists."""
    complaint = service.record_complaint(session, actor, customer_id, body)
    return respond(ComplaintOut.model_validate(complaint), actor, status_code=status.HTTP_201_CREATED)


@router.post("/complaints/{complaint_id}/resolve", response_model=ComplaintOut)
def resolve_complaint(session: SessionDep, actor: ManagerActor, complaint_id: IdPath) -> Response:
    """Close the case (supervisors and admins); the outbound exclusion stays."""
    return respond(ComplaintOut.model_validate(service.resolve(session, actor, complaint_id)), actor)
