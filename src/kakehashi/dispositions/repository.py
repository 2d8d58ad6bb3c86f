"""Queries on result codes (tenant-scoped)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kakehashi.dispositions.models import Disposition


class DispositionRepository:
    def __init__(self, session: Session, tenant_id: int) -> None:
        self.session, self.tenant_id = session, tenant_id

    def all(self) -> list[Disposition]:
        """Every code the tenant ever had, active ones first, in their order."""
        query = (
            select(Disposition)
            .where(Disposition.tenant_id == self.tenant_id)
            .order_by(Disposition.active.desc(), Disposition.position, Disposition.id)
        )
        return list(self.session.scalars(query))
