from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kakehashi.tenants.models import Tenant


def get_by_code(session: Session, code: str) -> Tenant | None:
    return session.scalars(select(Tenant).where(Tenant.code == code)).one_or_none()


def ensure(session: Session, code: str) -> Tenant:
    """The tenant with this code, created on first use (the center's own is named コールセンター)."""
    return get_or_create(session, code, "コールセンター" if code == "center" else code)


def get_or_create(session: Session, code: str, name: str) -> Tenant:
    tenant = get_by_code(session, code)
    if tenant is None:
        tenant = Tenant(code=code, name=name)
        session.add(tenant)
        session.flush()
    return tenant


def get_by_id(session: Session, tenant_id: int) -> Tenant | None:
    return session.get(Tenant, tenant_id)


def all_tenants(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.code)))
