from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from kakehashi.auth.guard import AnyRoleActor, StaffActor
from kakehashi.kit.api import IdPath, SessionDep
from kakehashi.orders import service
from kakehashi.orders.schemas import OrderCreate, OrderOut

router = APIRouter(prefix="/api/v1", tags=["orders"])


@router.get("/customers/{customer_id}/orders", response_model=list[OrderOut])
def list_orders(
    session: SessionDep, actor: AnyRoleActor, customer_id: IdPath, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[OrderOut]:
    return [OrderOut.model_validate(o) for o in service.list_orders(session, actor, customer_id, limit)]


@router.post("/customers/{customer_id}/orders", response_model=OrderOut, status_code=status.HTTP_201_CREATED)
def create_order(session: SessionDep, actor: StaffActor, customer_id: IdPath, body: OrderCreate) -> OrderOut:
    return OrderOut.model_validate(service.create_order(session, actor, customer_id, body))
