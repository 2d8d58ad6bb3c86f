from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from kakehashi.auth.guard import StaffActor
from kakehashi.contacts import service
from kakehashi.contacts.schemas import ContactCreate, ContactOut
from kakehashi.kit.api import MAX_OFFSET, IdPath, SessionDep, respond

router = APIRouter(prefix="/api/v1", tags=["contacts"])


@router.get("/customers/{customer_id}/contacts", response_model=list[ContactOut])
def timeline(
    session: SessionDep,
    actor: StaffActor,
    customer_id: IdPath,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """The customer's contact history, newest first."""
    contacts = service.timeline(session, actor, customer_id, limit, offset)
    return respond([ContactOut.model_validate(c) for c in contacts], actor)


@router.post("/customers/{customer_id}/contacts", response_model=ContactOut, status_code=status.HTTP_201_CREATED)
def add_contact(session: SessionDep, actor: StaffActor, customer_id: IdPath, body: ContactCreate) -> Response:
    contact = service.add_contact(session, actor, customer_id, body)
    return respond(ContactOut.model_validate(contact), actor, status_code=status.HTTP_201_CREATED)
