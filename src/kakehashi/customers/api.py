from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from kakehashi.customers import service
from kakehashi.customers.schemas import (
    CustomerBrief,
    CustomerCreate,
    CustomerOut,
    CustomerPage,
    CustomerUpdate,
    CustomFieldCreate,
    CustomFieldOut,
    CustomFieldUpdate,
    Gender,
)
from kakehashi.kit.api import ActorDep, SessionDep

router = APIRouter(prefix="/api/v1", tags=["customers"])


@router.get("/customers/suggest", response_model=list[CustomerBrief])
def suggest_customers(
    session: SessionDep,
    actor: ActorDep,
    q: Annotated[str, Query(min_length=1, max_length=50, description="kanji, hiragana or katakana prefix")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[CustomerBrief]:
    """Customers whose name or reading starts with ``q`` (や finds ヤマダ and 山田 read ヤマダ)."""
    return [
        CustomerBrief.model_validate(c).model_copy(update={"phone": phone})
        for c, phone in service.suggest(session, actor, q, limit)
    ]


@router.get("/customers", response_model=CustomerPage)
def list_customers(
    session: SessionDep,
    actor: ActorDep,
    q: Annotated[str | None, Query(max_length=50)] = None,
    rank: str | None = None,
    prefecture: str | None = None,
    gender: Gender | None = None,
    age_min: Annotated[int | None, Query(ge=0, le=150)] = None,
    age_max: Annotated[int | None, Query(ge=0, le=150)] = None,
    cf: Annotated[list[str] | None, Query(description="custom field filter key:op:value")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CustomerPage:
    items, total = service.search_customers(
        session,
        actor,
        q=q,
        rank=rank,
        prefecture=prefecture,
        gender=gender.value if gender else None,
        age_min=age_min,
        age_max=age_max,
        custom_filters=cf,
        limit=limit,
        offset=offset,
    )
    return CustomerPage(items=[CustomerOut.model_validate(c) for c in items], total=total, limit=limit, offset=offset)


@router.post("/customers", response_model=CustomerOut, status_code=status.HTTP_201_CREATED)
def create_customer(session: SessionDep, actor: ActorDep, body: CustomerCreate) -> CustomerOut:
    return CustomerOut.model_validate(service.create_customer(session, actor, body))


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def get_customer(session: SessionDep, actor: ActorDep, customer_id: int) -> CustomerOut:
    return CustomerOut.model_validate(service.get_customer(session, actor, customer_id))


@router.patch("/customers/{customer_id}", response_model=CustomerOut)
def update_customer(session: SessionDep, actor: ActorDep, customer_id: int, body: CustomerUpdate) -> CustomerOut:
    return CustomerOut.model_validate(service.update_customer(session, actor, customer_id, body))


@router.get("/custom-fields", response_model=list[CustomFieldOut], tags=["custom fields"])
def list_custom_fields(session: SessionDep, actor: ActorDep) -> list[CustomFieldOut]:
    return [CustomFieldOut.model_validate(d) for d in service.list_custom_fields(session, actor)]


@router.post(
    "/custom-fields", response_model=CustomFieldOut, status_code=status.HTTP_201_CREATED, tags=["custom fields"]
)
def define_custom_field(session: SessionDep, actor: ActorDep, body: CustomFieldCreate) -> CustomFieldOut:
    return CustomFieldOut.model_validate(service.define_custom_field(session, actor, body))


@router.patch("/custom-fields/{key}", response_model=CustomFieldOut, tags=["custom fields"])
def update_custom_field(session: SessionDep, actor: ActorDep, key: str, body: CustomFieldUpdate) -> CustomFieldOut:
    return CustomFieldOut.model_validate(service.update_custom_field(session, actor, key, body))
