"""APPI routes: list sources (supervisors/admins), suspension (staff), disclosure and requests (managers)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from kakehashi.auth.guard import ManagerActor, StaffActor
from kakehashi.kit.api import MAX_OFFSET, IdPath, SessionDep, respond
from kakehashi.privacy import service
from kakehashi.privacy.schemas import (
    Channel,
    Disclosure,
    PrivacyRequestOut,
    SourceCreate,
    SourceDetail,
    SourceOut,
    SourcePage,
    SuspensionCreate,
)

router = APIRouter(prefix="/api/v1", tags=["privacy"])


@router.post("/privacy/sources", response_model=SourceOut, status_code=status.HTTP_201_CREATED)
def record_source(session: SessionDep, actor: ManagerActor, body: SourceCreate) -> Response:
    """Record where a purchased or provided list came from (第三者提供に係る記録)."""
    source = service.record_source(session, actor, body)
    return respond(SourceOut.model_validate(source), actor, status_code=status.HTTP_201_CREATED)


@router.get("/privacy/sources", response_model=SourcePage)
def list_sources(
    session: SessionDep,
    actor: ManagerActor,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    items, total = service.list_sources(session, actor, limit=limit, offset=offset)
    page = SourcePage(items=[SourceOut.model_validate(s) for s in items], total=total, limit=limit, offset=offset)
    return respond(page, actor)


@router.get("/privacy/sources/{source_id}", response_model=SourceDetail)
def get_source(session: SessionDep, actor: ManagerActor, source_id: IdPath) -> Response:
    source, count = service.get_source(session, actor, source_id)
    detail = SourceDetail.model_validate({**SourceOut.model_validate(source).model_dump(), "customer_count": count})
    return respond(detail, actor)


@router.post(
    "/customers/{customer_id}/privacy/suspension",
    response_model=PrivacyRequestOut,
    status_code=status.HTTP_201_CREATED,
)
def request_suspension(session: SessionDep, actor: StaffActor, customer_id: IdPath, body: SuspensionCreate) -> Response:
    """Suspension of use (利用停止請求): the customer becomes do-not-contact and leaves outbound lists."""
    request = service.request_suspension(session, actor, customer_id, body)
    return respond(PrivacyRequestOut.model_validate(request), actor, status_code=status.HTTP_201_CREATED)


@router.post("/customers/{customer_id}/privacy/disclosure", response_model=Disclosure)
def disclose(
    session: SessionDep,
    actor: ManagerActor,
    customer_id: IdPath,
    channel: Annotated[Channel | None, Query(description="how the disclosure request came in")] = None,
    received_on: Annotated[date | None, Query(description="when it came in (default: today)")] = None,
) -> Response:
    """Everything held about the customer (開示請求). Recorded as a request and audited as one export.

    A POST: it records the request, so a cross-site link must not be able to trigger it (CSRF applies).
    """
    return respond(service.disclose(session, actor, customer_id, channel=channel, received_on=received_on), actor)


@router.get("/customers/{customer_id}/privacy/requests", response_model=list[PrivacyRequestOut])
def list_requests(session: SessionDep, actor: ManagerActor, customer_id: IdPath) -> Response:
    requests = service.requests_for_customer(session, actor, customer_id)
    return respond([PrivacyRequestOut.model_validate(r) for r in requests], actor)
