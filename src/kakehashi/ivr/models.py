"""IVR flows and their versions: every save is a new version; the newest valid one answers calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kakehashi.kit.db import Base, BigId, IdMixin, TimestampMixin, UTCDateTime, utcnow
from kakehashi.kit.types import JsonDoc


class IvrFlow(IdMixin, TimestampMixin, Base):
    __tablename__ = "ivr_flows"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    current_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __table_args__ = (UniqueConstraint("tenant_id", "name"),)


class IvrFlowVersion(IdMixin, Base):
    __tablename__ = "ivr_flow_versions"

    flow_id: Mapped[int] = mapped_column(BigId, ForeignKey("ivr_flows.id", ondelete="CASCADE"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    definition: Mapped[dict[str, Any]] = mapped_column(JsonDoc, nullable=False)
    comment: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_by: Mapped[str] = mapped_column(String(60), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (UniqueConstraint("flow_id", "version"),)
