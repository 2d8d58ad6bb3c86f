"""``/api/v1/dispositions``: the result codes agents close calls with. Everyone on staff reads them; supervisors
and admins set the list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from kakehashi.auth.guard import ManagerActor, StaffActor
from kakehashi.dispositions import service
from kakehashi.dispositions.schemas import DispositionList, DispositionOut
from kakehashi.kit.api import SessionDep, respond
from kakehashi.kit.context import MANAGERS

router = APIRouter(prefix="/api/v1", tags=["dispositions"])


@router.get("/dispositions", response_model=list[DispositionOut])
def list_dispositions(
    session: SessionDep,
    actor: StaffActor,
    retired: Annotated[bool, Query(description="also the retired codes (supervisors and admins)")] = False,
) -> Response:
    """The tenant's result codes in the order agents see them (the defaults, ``builtin``, until it sets its own)."""
    return respond(service.list_dispositions(session, actor, retired=retired and actor.role in MANAGERS), actor)


@router.put("/dispositions", response_model=list[DispositionOut])
def replace_dispositions(session: SessionDep, actor: ManagerActor, body: DispositionList) -> Response:
    """Set the whole list, in order; codes left out are retired (calls keep their text, reports their group)."""
    return respond(service.replace_dispositions(session, actor, body.dispositions), actor)
