from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from kakehashi.auth.guard import StaffActor
from kakehashi.kit.api import IdQuery, SessionDep, respond
from kakehashi.kit.errors import ValidationFailed, field_error
from kakehashi.screenpop import service
from kakehashi.screenpop.schemas import ScreenPop

router = APIRouter(prefix="/api/v1", tags=["screen pop"])


@router.get("/screenpop", response_model=ScreenPop)
def screen_pop(
    request: Request,
    session: SessionDep,
    actor: StaffActor,
    phone: Annotated[str | None, Query(max_length=40, description="caller number in any written form")] = None,
    customer_id: Annotated[IdQuery, Query(description="or: a customer picked from a list")] = None,
) -> Response:
    """Customer card for a caller; an unknown number returns ``known: false`` with the normalized number."""
    if (phone is None) == (customer_id is None):
        raise ValidationFailed(
            "give phone or customer_id", errors=[field_error("phone", "give exactly one of phone, customer_id")]
        )
    region = request.app.state.settings.default_region
    if customer_id is not None:
        pop = service.screen_pop_for_customer(session, actor, customer_id)
    else:
        pop = service.screen_pop(session, actor, phone or "", region=region)
    pop = service.with_campaign_history(session, actor, pop, region=region)
    # Serialized once by pydantic-core; FastAPI would validate the model again and encode it twice.
    return respond(pop, actor)
