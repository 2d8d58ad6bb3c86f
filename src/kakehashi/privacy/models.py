"""APPI records: where each list came from, which customers it brought, and the requests of data subjects."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kakehashi.kit.db import Base, BigId, IdMixin, UTCDateTime, utcnow
from kakehashi.kit.types import JsonDoc


class DataSource(IdMixin, Base):
    """A third-party provision record (第三者提供に係る記録): provider, how they got it, date, items."""

    __tablename__ = "data_sources"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False, index=True)
    provider_name: Mapped[str] = mapped_column(String(200), nullable=False)
    provider_address: Mapped[str | None] = mapped_column(String(300))
    provider_representative: Mapped[str | None] = mapped_column(String(100))
    acquisition_method: Mapped[str] = mapped_column(Text, nullable=False)
    received_on: Mapped[date] = mapped_column(Date, nullable=False)
    items: Mapped[list[str]] = mapped_column(JsonDoc, nullable=False)
    purpose: Mapped[str | None] = mapped_column(Text)
    retain_until: Mapped[date] = mapped_column(Date, nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(60), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class CustomerSource(Base):
    """Which list brought (or updated) a customer."""

    __tablename__ = "customer_sources"

    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    source_id: Mapped[int] = mapped_column(BigId, ForeignKey("data_sources.id"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (Index("ix_customer_sources_source_id", "source_id"),)


class PrivacyRequest(IdMixin, Base):
    """A data subject's request: disclosure (開示), suspension of use (利用停止), correction (訂正)."""

    __tablename__ = "privacy_requests"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    received_on: Mapped[date] = mapped_column(Date, nullable=False)
    channel: Mapped[str] = mapped_column(String(20), nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    handled_by: Mapped[str] = mapped_column(String(60), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
