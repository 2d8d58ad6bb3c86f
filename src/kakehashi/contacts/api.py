from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy.orm import Session

from kakehashi.contacts import service
from kakehashi.contacts.schemas import ContactCreate, ContactOut
from kakehashi.kit.api import current_actor, db_session
from kakehashi.kit.context import Actor

router = APIRouter(prefix="/api/v1", tags=["contacts"])
SessionDep = Annotated[Session, Depends(db_session)]
ActorDep = Annotated[Actor, Depends(current_actor)]


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
