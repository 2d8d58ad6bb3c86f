"""Tenants: client companies (委託元) and the center. Only center-wide admins create or change them."""

from __future__ import annotations

from sqlalchemy.orm import Session

from kakehashi.audit import service as audit
from kakehashi.kit.context import Actor
from kakehashi.kit.errors import Conflict, NotFound, field_error
from kakehashi.tenants import repository
from kakehashi.tenants.models import Tenant
from kakehashi.tenants.schemas import TenantCreate, TenantUpdate

# --- lookups for the rest of the house (other domains, the wiring, the CLI, the demo wing, benchmarks) -----
# Nobody outside ``tenants`` imports its repository (import contract, ADR 0021); these are its front.


def get_by_code(session: Session, code: str) -> Tenant | None:
    return repository.get_by_code(session, code)


def get_by_id(session: Session, tenant_id: int) -> Tenant | None:
    return repository.get_by_id(session, tenant_id)


def all_tenants(session: Session) -> list[Tenant]:
    """Every tenant, by code (center-wide jobs: the pipeline's start-up, ``kakehashi user list``)."""
    return repository.all_tenants(session)


def ensure(session: Session, code: str) -> Tenant:
    """The tenant with this code, created on first use (the center's own is named コールセンター)."""
    return repository.ensure(session, code)


def get_or_create(session: Session, code: str, name: str) -> Tenant:
    """The tenant with this code, created with ``name`` on first use (set-up jobs, tests, benchmarks)."""
    return repository.get_or_create(session, code, name)


# --- the admin's changes -------------------------------------------------------------------------------------


def visible_tenants(session: Session, actor: Actor, *, center_wide: bool) -> list[Tenant]:
    """All tenants for a center-wide admin; otherwise only the actor's own."""
    if center_wide:
        return repository.all_tenants(session)
    own = repository.get_by_id(session, actor.tenant_id)
    return [own] if own else []


def create_tenant(session: Session, actor: Actor, data: TenantCreate) -> Tenant:
    if repository.get_by_code(session, data.code) is not None:
        raise Conflict(f"tenant '{data.code}' exists", errors=[field_error("code", "already taken")])
    tenant = repository.get_or_create(session, data.code, data.name.strip())
    tenant.client_sees_personal_data = data.client_sees_personal_data
    session.flush()
    audit.record(session, actor.in_tenant(tenant.id), "tenant.create", resource="tenant", resource_id=tenant.id)
    return tenant


def update_tenant(session: Session, actor: Actor, tenant_id: int, data: TenantUpdate) -> Tenant:
    tenant = repository.get_by_id(session, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    if data.name is not None:
        tenant.name = data.name.strip()
    if data.client_sees_personal_data is not None:
        tenant.client_sees_personal_data = data.client_sees_personal_data
    session.flush()
    audit.record(
        session,
        actor.in_tenant(tenant.id),
        "tenant.update",
        resource="tenant",
        resource_id=tenant.id,
        detail=data.model_dump(exclude_unset=True),
    )
    return tenant
