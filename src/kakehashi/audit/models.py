"""The audit log. Rows are only ever inserted: triggers refuse UPDATE and DELETE on both databases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kakehashi.kit.db import Base, BigId, IdMixin, UTCDateTime, utcnow
from kakehashi.kit.types import JsonDoc


class AuditEvent(IdMixin, Base):
    """One access: who (user, role), what (action on resource, the customer it concerns), when, from where."""

    __tablename__ = "audit_events"

    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # No foreign keys: the log must outlive (and never block deleting) what it talks about.
    tenant_id: Mapped[int | None] = mapped_column(BigId)
    user_id: Mapped[int | None] = mapped_column(BigId)
    username: Mapped[str] = mapped_column(String(60), nullable=False)
    role: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(30), nullable=False)
    outcome: Mapped[str] = mapped_column(String(10), nullable=False, default="ok")
    resource: Mapped[str | None] = mapped_column(String(30))
    resource_id: Mapped[int | None] = mapped_column(BigId)
    customer_id: Mapped[int | None] = mapped_column(BigId)
    route: Mapped[str | None] = mapped_column(String(200))
    origin: Mapped[str] = mapped_column(String(64), nullable=False)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)

    __table_args__ = (
        Index("ix_audit_events_tenant_customer_at", "tenant_id", "customer_id", "at"),
        Index("ix_audit_events_user_at", "user_id", "at"),
        Index("ix_audit_events_at", "at"),
    )
