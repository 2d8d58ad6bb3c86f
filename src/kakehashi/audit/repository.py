"""Audit queries, scoped to one tenant."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select

from kakehashi.audit.models import AuditEvent
from kakehashi.kit.repository import TenantRepository


@dataclass(frozen=True, slots=True)
class AuditFilter:
    customer_id: int | None = None
    user_id: int | None = None
    username: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditRepository(TenantRepository):
    def _where(self, flt: AuditFilter) -> Select[AuditEvent]:
        stmt = self.scoped(select(AuditEvent), AuditEvent)
        if flt.customer_id is not None:
            stmt = stmt.where(AuditEvent.customer_id == flt.customer_id)
        if flt.user_id is not None:
            stmt = stmt.where(AuditEvent.user_id == flt.user_id)
        if flt.username:
            stmt = stmt.where(AuditEvent.username == flt.username.lower())
        if flt.action:
            stmt = stmt.where(AuditEvent.action == flt.action)
        if flt.outcome:
            stmt = stmt.where(AuditEvent.outcome == flt.outcome)
        if flt.since:
            stmt = stmt.where(AuditEvent.at >= flt.since)
        if flt.until:
            stmt = stmt.where(AuditEvent.at < flt.until)
        return stmt

    def search(self, flt: AuditFilter, *, limit: int, offset: int) -> list[AuditEvent]:
        stmt = self._where(flt).order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
        return list(self.session.scalars(stmt))

    def count(self, flt: AuditFilter) -> int:
        return self.session.scalar(select(func.count()).select_from(self._where(flt).subquery())) or 0

    def stream(self, flt: AuditFilter) -> Iterator[AuditEvent]:
        stmt = self._where(flt).order_by(AuditEvent.id).execution_options(yield_per=2000)
        yield from self.session.scalars(stmt)
