from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from kakehashi.kit.api import ActorDep, SessionDep
from kakehashi.screenpop import service
from kakehashi.screenpop.schemas import ScreenPop

router = APIRouter(prefix="/api/v1", tags=["screen pop"])


@router.get("/screenpop", response_model=ScreenPop)
def screen_pop(
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    phone: Annotated[str, Query(max_length=40, description="caller number in any written form")],
) -> Response:
    """Customer card for a caller; an unknown number returns ``known: false`` with the normalized number."""
    pop = service.screen_pop(session, actor, phone, region=request.app.state.settings.default_region)
    # Serialized once by pydantic-core; FastAPI would validate the model again and encode it twice.
    return Response(content=pop.model_dump_json(), media_type="application/json")
