from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from kakehashi.auth.guard import AdminActor, AnyRoleActor, StaffActor
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
from kakehashi.kit.api import MAX_OFFSET, IdPath, SessionDep, respond

router = APIRouter(prefix="/api/v1", tags=["customers"])


@router.get("/customers/suggest", response_model=list[CustomerBrief])
def suggest_customers(
    session: SessionDep,
    actor: AnyRoleActor,
    q: Annotated[str, Query(min_length=1, max_length=50, description="kanji, hiragana or katakana prefix")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Response:
    """Customers whose name or reading starts with ``q`` (や finds ヤマダ and 山田 read ヤマダ)."""
    return respond(
        [
            CustomerBrief.model_validate(c).model_copy(update={"phone": phone})
            for c, phone in service.suggest(session, actor, q, limit)
        ],
        actor,
    )


@router.get("/customers", response_model=CustomerPage)
def list_customers(
    session: SessionDep,
    actor: AnyRoleActor,
    q: Annotated[str | None, Query(max_length=50)] = None,
    rank: str | None = None,
    prefecture: str | None = None,
    gender: Gender | None = None,
    age_min: Annotated[int | None, Query(ge=0, le=150)] = None,
    age_max: Annotated[int | None, Query(ge=0, le=150)] = None,
    cf: Annotated[list[str] | None, Query(description="custom field filter key:op:value")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """Search with filters; every customer listed counts as a read in the audit log."""
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
    page = CustomerPage(items=[CustomerOut.model_validate(c) for c in items], total=total, limit=limit, offset=offset)
    return respond(page, actor)


@router.post("/customers", response_model=CustomerOut, status_code=status.HTTP_201_CREATED)
def create_customer(session: SessionDep, actor: StaffActor, body: CustomerCreate) -> Response:
    customer = service.create_customer(session, actor, body)
    return respond(CustomerOut.model_validate(customer), actor, status_code=status.HTTP_201_CREATED)


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def get_customer(session: SessionDep, actor: AnyRoleActor, customer_id: IdPath) -> Response:
    return respond(CustomerOut.model_validate(service.read_customer(session, actor, customer_id)), actor)


@router.patch("/customers/{customer_id}", response_model=CustomerOut)
def update_customer(session: SessionDep, actor: StaffActor, customer_id: IdPath, body: CustomerUpdate) -> Response:
    return respond(CustomerOut.model_validate(service.update_customer(session, actor, customer_id, body)), actor)


@router.get("/custom-fields", response_model=list[CustomFieldOut], tags=["custom fields"])
def list_custom_fields(session: SessionDep, actor: AnyRoleActor) -> list[CustomFieldOut]:
    return [CustomFieldOut.model_validate(d) for d in service.list_custom_fields(session, actor)]


@router.post(
    "/custom-fields", response_model=CustomFieldOut, status_code=status.HTTP_201_CREATED, tags=["custom fields"]
)
def define_custom_field(session: SessionDep, actor: AdminActor, body: CustomFieldCreate) -> CustomFieldOut:
    return CustomFieldOut.model_validate(service.define_custom_field(session, actor, body))


@router.patch("/custom-fields/{key}", response_model=CustomFieldOut, tags=["custom fields"])
def update_custom_field(session: SessionDep, actor: AdminActor, key: str, body: CustomFieldUpdate) -> CustomFieldOut:
    return CustomFieldOut.model_validate(service.update_custom_field(session, actor, key, body))
