from __future__ import annotations

from sqlalchemy import select

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
