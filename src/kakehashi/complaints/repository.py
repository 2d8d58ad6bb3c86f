from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Integer, Select, bindparam, select

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

    def all_for_customer(self, customer_id: int) -> list[Complaint]:
        """Every return and complaint, open or closed, oldest first (disclosure: no limit)."""
        stmt = self.scoped(select(Complaint).where(Complaint.customer_id == customer_id), Complaint)
        return list(self.session.scalars(stmt.order_by(Complaint.occurred_on, Complaint.id)))

    def open_rows(self, customer_id: int, limit: int) -> list[dict[str, Any]]:
        """Open cases, newest first, as plain dicts (screen pop)."""
        params = {"customer_id": customer_id, "tenant_id": self.tenant_id, "limit": limit}
        return [dict(r) for r in self.session.execute(_OPEN, params).mappings()]

    def customer_ids_with(self, kinds: Sequence[str], *, since: date | None, open_only: bool) -> Select[Any]:
        """Customers with a case of these kinds (that occurred on or after ``since``; only open ones)."""
        stmt = select(Complaint.customer_id).where(Complaint.kind.in_(list(kinds)))
        if since is not None:
            stmt = stmt.where(Complaint.occurred_on >= since)
        if open_only:
            stmt = stmt.where(Complaint.status == "open")
        return self.scoped(stmt, Complaint)


_t = Complaint.__table__
_OPEN = (
    select(_t)
    .where(
        _t.c.customer_id == bindparam("customer_id"),
        _t.c.tenant_id == bindparam("tenant_id"),
        _t.c.status == "open",
    )
    .order_by(_t.c.occurred_on.desc(), _t.c.id.desc())
    .limit(bindparam("limit", type_=Integer))
)
