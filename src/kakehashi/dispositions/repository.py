"""Queries on result codes (tenant-scoped)."""

from __future__ import annotations

from sqlalchemy import select

from kakehashi.dispositions.models import Disposition
from kakehashi.kit.repository import TenantRepository


class DispositionRepository(TenantRepository):
    def all(self) -> list[Disposition]:
        """Every code the tenant ever had, active ones first, in their order."""
        query = select(Disposition).order_by(Disposition.active.desc(), Disposition.position, Disposition.id)
        return list(self.session.scalars(self.scoped(query, Disposition)))
