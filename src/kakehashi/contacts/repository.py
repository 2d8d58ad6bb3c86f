from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, bindparam, select

from kakehashi.contacts.models import Contact
from kakehashi.kit.repository import TenantRepository


class ContactRepository(TenantRepository):
    def add(self, contact: Contact) -> Contact:
        contact.tenant_id = self.tenant_id
        self.session.add(contact)
        self.session.flush()
        return contact

    def timeline(self, customer_id: int, limit: int, offset: int = 0) -> list[Contact]:
        """Newest first."""
        stmt = self.scoped(
            select(Contact)
            .where(Contact.customer_id == customer_id)
            .order_by(Contact.occurred_at.desc(), Contact.id.desc())
            .limit(limit)
            .offset(offset),
            Contact,
        )
        return list(self.session.scalars(stmt))

    def all_for_customer(self, customer_id: int) -> list[Contact]:
        """Every contact, oldest first (disclosure: no limit)."""
        stmt = self.scoped(select(Contact).where(Contact.customer_id == customer_id), Contact)
        return list(self.session.scalars(stmt.order_by(Contact.occurred_at, Contact.id)))

    def recent_rows(self, customer_id: int, limit: int) -> list[dict[str, Any]]:
        """Newest first, as plain dicts (screen pop)."""
        params = {"customer_id": customer_id, "tenant_id": self.tenant_id, "limit": limit}
        return [dict(r) for r in self.session.execute(_RECENT, params).mappings()]


_t = Contact.__table__
_RECENT = (
    select(_t)
    .where(_t.c.customer_id == bindparam("customer_id"), _t.c.tenant_id == bindparam("tenant_id"))
    .order_by(_t.c.occurred_at.desc(), _t.c.id.desc())
    .limit(bindparam("limit", type_=Integer))
)
