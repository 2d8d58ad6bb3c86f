from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kakehashi.kit.db import Base, BigId, IdMixin, UTCDateTime, utcnow


class Order(IdMixin, Base):
    __tablename__ = "orders"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False)
    order_no: Mapped[str | None] = mapped_column(String(40))
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    channel: Mapped[str] = mapped_column(String(20), nullable=False, default="phone")
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="ordered")
    total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.id"
    )

    __table_args__ = (Index("ix_orders_customer_ordered_at", "customer_id", "ordered_at"),)


class OrderLine(IdMixin, Base):
    __tablename__ = "order_lines"

    order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True
    )
    sku: Mapped[str | None] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    unit_price: Mapped[int] = mapped_column(Integer, nullable=False)
    amount: Mapped[int] = mapped_column(Integer, nullable=False)

    order: Mapped[Order] = relationship(back_populates="lines")
