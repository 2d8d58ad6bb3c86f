from __future__ import annotations

from sqlalchemy import select

from kakehashi.complaints.models import Complaint
from kakehashi.kit.repository import TenantRepository


class ComplaintRepository(TenantRepository):
    def add(self, complaint: Complaint) -> Complaint:
        complaint.tenant_id = self.tenant_id
        self.session.add(complaint)
        self.session.flush()
        return complaint

    def get(self, complaint_id: int) -> Complaint | None:
        stmt = self.scoped(select(Complaint).where(Complaint.id == complaint_id), Complaint)
        return self.session.scalars(stmt).one_or_none()

    def for_customer(self, customer_id: int, *, open_only: bool = False, limit: int = 200) -> list[Complaint]:
        stmt = self.scoped(select(Complaint).where(Complaint.customer_id == customer_id), Complaint)
        if open_only:
            stmt = stmt.where(Complaint.status == "open")
        stmt = stmt.order_by(Complaint.occurred_on.desc(), Complaint.id.desc()).limit(limit)
        return list(self.session.scalars(stmt))
