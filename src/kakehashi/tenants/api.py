from __future__ import annotations

from fastapi import APIRouter, Request, status

from kakehashi.auth.guard import AdminActor, Identity
from kakehashi.kit.api import IdPath, SessionDep
from kakehashi.kit.errors import Forbidden
from kakehashi.tenants import service
from kakehashi.tenants.schemas import TenantCreate, TenantOut, TenantUpdate

router = APIRouter(prefix="/api/v1", tags=["tenants"])


def _center_wide(request: Request) -> bool:
    identity: Identity = request.state.identity
    return identity.user.tenant_id is None


@router.get("/tenants", response_model=list[TenantOut])
def list_tenants(request: Request, session: SessionDep, actor: AdminActor) -> list[TenantOut]:
    """All tenants (center-wide admins) or your own."""
    tenants = service.visible_tenants(session, actor, center_wide=_center_wide(request))
    return [TenantOut.model_validate(t) for t in tenants]


@router.post("/tenants", response_model=TenantOut, status_code=status.HTTP_201_CREATED)
def create_tenant(request: Request, session: SessionDep, actor: AdminActor, body: TenantCreate) -> TenantOut:
    """A new client company (center-wide admins only)."""
    if not _center_wide(request):
        raise Forbidden("only center-wide admins manage tenants")
    return TenantOut.model_validate(service.create_tenant(session, actor, body))


@router.patch("/tenants/{tenant_id}", response_model=TenantOut)
def update_tenant(
    request: Request, session: SessionDep, actor: AdminActor, tenant_id: IdPath, body: TenantUpdate
) -> TenantOut:
    if not _center_wide(request):
        raise Forbidden("only center-wide admins manage tenants")
    return TenantOut.model_validate(service.update_tenant(session, actor, tenant_id, body))
