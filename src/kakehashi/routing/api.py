"""Routing over HTTP: queues and their members, inbound numbers, callback requests and voicemail.

Admins change the configuration (the running ACD picks changes up at once); supervisors read it and work
the callback and voicemail lists. Callers' numbers are personal data: masked for roles that may not see
them, and every list that shows them is an audited read.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel

from kakehashi.auth.guard import AdminActor, ManagerActor
from kakehashi.kit.api import IdPath, SessionDep, respond
from kakehashi.kit.context import Actor
from kakehashi.routing import service
from kakehashi.routing.schemas import (
    CallbackOut,
    MembersIn,
    MembersOut,
    NumberIn,
    NumberOut,
    NumberUpdate,
    QueueCreate,
    QueueOut,
    QueueSettings,
    VoicemailOut,
)

router = APIRouter(prefix="/api/v1", tags=["routing"])
ListLimit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/queues", response_model=list[QueueOut])
def list_queues(session: SessionDep, actor: ManagerActor) -> Response:
    return respond([QueueOut.model_validate(q) for q in service.list_queues(session, actor)], actor)


@router.post("/queues", response_model=QueueOut, status_code=status.HTTP_201_CREATED)
def create_queue(session: SessionDep, actor: AdminActor, body: QueueCreate) -> Response:
    """A new queue (defaults: longest-idle, 30 s wrap-up, 15 s ring time-out, SL threshold 20 s)."""
    data = body.model_dump(exclude_unset=True, exclude={"name"})
    queue = service.create_queue(session, actor, body.name, data)
    return respond(QueueOut.model_validate(queue), actor, status_code=status.HTTP_201_CREATED)


@router.get("/queues/{queue_id}", response_model=QueueOut)
def get_queue(session: SessionDep, actor: ManagerActor, queue_id: IdPath) -> Response:
    return respond(QueueOut.model_validate(service.get_queue(session, actor, queue_id)), actor)


@router.patch("/queues/{queue_id}", response_model=QueueOut)
def update_queue(session: SessionDep, actor: AdminActor, queue_id: IdPath, body: QueueSettings) -> Response:
    """Change settings; only the fields sent change (null clears max_wait_s, max_length, skill…)."""
    queue = service.update_queue(session, actor, queue_id, body.model_dump(exclude_unset=True))
    return respond(QueueOut.model_validate(queue), actor)


def _members(session: SessionDep, actor: Actor, queue_id: int) -> MembersOut:
    queue = service.get_queue(session, actor, queue_id)
    return MembersOut(queue=queue.name, skill=queue.skill, members=service.members_of(session, actor, queue_id))


@router.get("/queues/{queue_id}/members", response_model=MembersOut)
def get_members(session: SessionDep, actor: ManagerActor, queue_id: IdPath) -> Response:
    return respond(_members(session, actor, queue_id), actor)


@router.put("/queues/{queue_id}/members", response_model=MembersOut)
def set_members(session: SessionDep, actor: ManagerActor, queue_id: IdPath, body: MembersIn) -> Response:
    """Replace the listed members (agent name → level). Supervisors move agents between queues with this."""
    service.set_members(session, actor, queue_id, body.members)
    return respond(_members(session, actor, queue_id), actor)


@router.get("/inbound-numbers", response_model=list[NumberOut])
def list_numbers(session: SessionDep, actor: ManagerActor) -> Response:
    """The center's own numbers (DNIS) and what answers each: an IVR flow or a queue."""
    return respond([NumberOut.model_validate(n) for n in service.list_numbers(session, actor)], actor)


@router.post("/inbound-numbers", response_model=NumberOut, status_code=status.HTTP_201_CREATED)
def add_number(session: SessionDep, actor: AdminActor, body: NumberIn) -> Response:
    """Route a number (any written form) to an IVR flow or a queue. 409 when the number is in use."""
    row = service.add_number(session, actor, body.number, flow=body.flow, queue=body.queue, label=body.label)
    return respond(NumberOut.model_validate(row), actor, status_code=status.HTTP_201_CREATED)


@router.patch("/inbound-numbers/{number_id}", response_model=NumberOut)
def update_number(session: SessionDep, actor: AdminActor, number_id: IdPath, body: NumberUpdate) -> Response:
    row = service.update_number(session, actor, number_id, body.model_dump(exclude_unset=True))
    return respond(NumberOut.model_validate(row), actor)


@router.delete("/inbound-numbers/{number_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_number(session: SessionDep, actor: AdminActor, number_id: IdPath) -> Response:
    service.delete_number(session, actor, number_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/callbacks", response_model=list[CallbackOut])
def list_callbacks(
    session: SessionDep,
    actor: ManagerActor,
    status_: Annotated[Literal["pending", "dialing", "done", "failed"] | None, Query(alias="status")] = None,
    limit: ListLimit = 200,
) -> Response:
    """Callback requests: waiting ones first, in the order they will be called."""
    rows = service.callbacks(session, actor, limit, status_)
    return respond([CallbackOut.model_validate(c) for c in rows], actor)


@router.get("/voicemails", response_model=list[VoicemailOut])
def list_voicemails(
    session: SessionDep,
    actor: ManagerActor,
    status_: Annotated[Literal["new", "done"] | None, Query(alias="status")] = None,
    limit: ListLimit = 200,
) -> Response:
    """Messages callers left, newest first."""
    rows = service.voicemails(session, actor, limit, status_)
    return respond([VoicemailOut.model_validate(v) for v in rows], actor)


class VoicemailStatus(BaseModel):
    status: Literal["new", "done"]


@router.patch("/voicemails/{voicemail_id}", response_model=VoicemailOut)
def set_voicemail_status(
    session: SessionDep, actor: ManagerActor, voicemail_id: IdPath, body: VoicemailStatus
) -> Response:
    """Mark a message handled (``done``), or back to ``new``."""
    row = service.set_voicemail_status(session, actor, voicemail_id, body.status)
    return respond(VoicemailOut.model_validate(row), actor)
