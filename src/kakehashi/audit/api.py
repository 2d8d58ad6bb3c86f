"""Reading the audit log, and recording refused requests."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from kakehashi.audit import service
from kakehashi.audit.repository import AuditFilter
from kakehashi.audit.schemas import AuditEventOut, AuditPage
from kakehashi.auth.guard import ManagerActor
from kakehashi.customers import service as customers
from kakehashi.kit.api import MAX_OFFSET, IdQuery, SessionDep
from kakehashi.kit.context import Actor
from kakehashi.kit.db import unit_of_work
from kakehashi.kit.errors import Forbidden, NotFound, ValidationFailed, field_error

router = APIRouter(prefix="/api/v1", tags=["audit"])
log = logging.getLogger(__name__)


@router.get("/audit", response_model=AuditPage)
def audit_log(
    session: SessionDep,
    actor: ManagerActor,
    customer_id: IdQuery = None,
    user_id: IdQuery = None,
    username: Annotated[str | None, Query(max_length=60)] = None,
    action: Annotated[str | None, Query(max_length=30)] = None,
    outcome: Annotated[str | None, Query(pattern="^(ok|failed|denied|locked)$")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> AuditPage:
    """Who read or changed what, newest first — e.g. every access to one customer, or what one user
    touched in a time window (the list a breach report needs)."""
    if since and until and since > until:
        raise ValidationFailed("since is after until", errors=[field_error("since", "must be before until")])
    flt = AuditFilter(customer_id, user_id, username, action, outcome, since, until)
    items, total = service.search(session, actor, flt, limit=limit, offset=offset)
    return AuditPage(items=[AuditEventOut.model_validate(e) for e in items], total=total, limit=limit, offset=offset)


def record_refusal(request: Request, exc: BaseException) -> None:
    """After-rollback hook: a 403, or a 404 on an id, by a logged-in user is written to the audit log.

    The customer id the request named is checked against the actor's tenant, for a 403 as for a 404: the
    row's ``customer_id`` is set only when the customer is the tenant's own. An id that exists in another
    tenant is flagged ``cross_tenant`` and kept only in the detail (``attempted_customer_id``): never recorded
    as if it were one of the tenant's customers. That is what an attacker probing ids looks like (the caller
    itself still only saw "not found" or "forbidden").
    """
    actor: Actor | None = getattr(request.state, "actor", None)
    if actor is None or not isinstance(exc, Forbidden | NotFound):
        return
    params = {k: str(v)[:40] for k, v in request.path_params.items()}
    detail: dict[str, object] = {"status": exc.status, "path": params} if params else {"status": exc.status}
    if isinstance(exc, Forbidden):
        detail["reason"] = exc.detail[:200]
    attempted = _int(request.path_params.get("customer_id") or request.query_params.get("customer_id"))
    with unit_of_work(request.app.state.session_factory) as session:
        owner = customers.tenant_of_customer(session, attempted) if attempted is not None else None
        own = owner is not None and owner == actor.tenant_id
        if attempted is not None:
            detail["attempted_customer_id"] = attempted
            detail["cross_tenant"] = owner is not None and not own
        service.record(
            session,
            actor,
            "read" if request.method == "GET" else "change",
            # A 404 showed nothing of the customer; a 403 on the tenant's own customer is about that customer.
            customer_id=attempted if own and isinstance(exc, Forbidden) else None,
            resource_id=attempted if own else None,
            resource="customer" if attempted is not None else None,
            outcome="denied",
            detail=detail,
        )


def _int(value: object) -> int | None:
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None
