from __future__ import annotations

from datetime import date

from sqlalchemy import select

from kakehashi.billing.models import RatePlan
from kakehashi.kit.repository import TenantRepository


class RatePlanRepository(TenantRepository):
    def add(self, plan: RatePlan) -> RatePlan:
        plan.tenant_id = self.tenant_id
        self.session.add(plan)
        self.session.flush()
        return plan

    def get(self, plan_id: int) -> RatePlan | None:
        return self.session.scalars(self.scoped(select(RatePlan).where(RatePlan.id == plan_id), RatePlan)).one_or_none()

    def list(self, limit: int = 500) -> list[RatePlan]:
        """Newest effective date first."""
        stmt = self.scoped(select(RatePlan), RatePlan).order_by(RatePlan.effective_from.desc(), RatePlan.id.desc())
        return list(self.session.scalars(stmt.limit(limit)))

    def exists(self, name: str, effective_from: date) -> bool:
        stmt = self.scoped(
            select(RatePlan.id).where(RatePlan.name == name, RatePlan.effective_from == effective_from), RatePlan
        )
        return self.session.scalars(stmt).first() is not None

    def any(self) -> bool:
        return self.session.scalars(self.scoped(select(RatePlan.id), RatePlan).limit(1)).first() is not None

    def in_effect(self, on: date) -> RatePlan | None:
        """The active plan with the latest ``effective_from`` on or before ``on`` (latest created wins a tie)."""
        stmt = self.scoped(
            select(RatePlan).where(RatePlan.active.is_(True), RatePlan.effective_from <= on), RatePlan
        ).order_by(RatePlan.effective_from.desc(), RatePlan.id.desc())
        return self.session.scalars(stmt.limit(1)).first()
