from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from kakehashi.contacts import service
from kakehashi.contacts.schemas import ContactCreate, ContactOut
from kakehashi.kit.api import ActorDep, SessionDep

router = APIRouter(prefix="/api/v1", tags=["contacts"])


@router.get("/customers/{customer_id}/contacts", response_model=list[ContactOut])
def timeline(
    session: SessionDep,
    actor: ActorDep,
    customer_id: int,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[ContactOut]:
    """The customer's contact history, newest first."""
    return [ContactOut.model_validate(c) for c in service.timeline(session, actor, customer_id, limit, offset)]


@router.post("/customers/{customer_id}/contacts", response_model=ContactOut, status_code=status.HTTP_201_CREATED)
def add_contact(session: SessionDep, actor: ActorDep, customer_id: int, body: ContactCreate) -> ContactOut:
    return ContactOut.model_validate(service.add_contact(session, actor, customer_id, body))
