from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kakehashi.kit.db import Base, BigId, IdMixin, TimestampMixin, UTCDateTime, utcnow
from kakehashi.kit.types import JsonDoc, search_key_type


class Customer(IdMixin, TimestampMixin, Base):
    __tablename__ = "customers"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    name_kana: Mapped[str | None] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(search_key_type(200), nullable=False)
    kana_key: Mapped[str | None] = mapped_column(search_key_type(200))
    gender: Mapped[str | None] = mapped_column(String(10))
    birthday: Mapped[date | None] = mapped_column(Date)
    postal_code: Mapped[str | None] = mapped_column(String(7))
    prefecture: Mapped[str | None] = mapped_column(String(10))
    city: Mapped[str | None] = mapped_column(String(100))
    town: Mapped[str | None] = mapped_column(String(200))
    street: Mapped[str | None] = mapped_column(String(200))
    building: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    notes: Mapped[str | None] = mapped_column(Text)
    rank: Mapped[str] = mapped_column(String(20), nullable=False, default="normal")
    caution: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    caution_reason: Mapped[str | None] = mapped_column(String(200))
    outbound_excluded: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    excluded_reason: Mapped[str | None] = mapped_column(String(200))
    # A suspension-of-use request (APPI 利用停止): no calls, mail or messages of any kind.
    do_not_contact: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    custom: Mapped[dict[str, Any]] = mapped_column(JsonDoc, nullable=False, default=dict)

    phones: Mapped[list[CustomerPhone]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="CustomerPhone.id"
    )

    __table_args__ = (
        Index("ix_customers_tenant_name_key", "tenant_id", "name_key"),
        Index("ix_customers_tenant_kana_key", "tenant_id", "kana_key"),
        # The few customers who may not be called (APPI suspension, outbound exclusion): campaign lists are
        # scrubbed against them a thousand numbers at a time, which must not read every customer each time.
        Index(
            "ix_customers_tenant_blocked",
            "tenant_id",
            "id",
            postgresql_where=text("do_not_contact OR outbound_excluded"),
            sqlite_where=text("do_not_contact OR outbound_excluded"),
        ),
    )


class CustomerPhone(IdMixin, Base):
    """A normalized number; unique per tenant, so it is the lookup key of the screen pop."""

    __tablename__ = "customer_phones"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True
    )
    e164: Mapped[str] = mapped_column(String(20), nullable=False)
    national: Mapped[str] = mapped_column(String(24), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    label: Mapped[str | None] = mapped_column(String(20))
    is_primary: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    customer: Mapped[Customer] = relationship(back_populates="phones")

    __table_args__ = (UniqueConstraint("tenant_id", "e164", name="uq_customer_phones_tenant_e164"),)


class CustomFieldDef(IdMixin, TimestampMixin, Base):
    """An attribute an admin adds at run time (後から追加項目); values live in ``Customer.custom``."""

    __tablename__ = "custom_field_defs"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    key: Mapped[str] = mapped_column(String(40), nullable=False)
    label: Mapped[str] = mapped_column(String(100), nullable=False)
    type: Mapped[str] = mapped_column(String(10), nullable=False)
    choices: Mapped[list[str] | None] = mapped_column(JsonDoc)
    required: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    __table_args__ = (UniqueConstraint("tenant_id", "key", name="uq_custom_field_defs_tenant_key"),)
