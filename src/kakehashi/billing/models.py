from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from kakehashi.kit.db import Base, BigId, IdMixin, TimestampMixin


class YenRate(TypeDecorator[Decimal]):
    """Yen per second, exact: NUMERIC(12, 6) on PostgreSQL, decimal text on SQLite.

    SQLite has no decimal type: SQLAlchemy would store floats (and warns); text keeps the value exact.
    """

    impl = Numeric(12, 6)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(24))
        return dialect.type_descriptor(Numeric(12, 6, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> Any:
        if value is None:
            return None
        return str(plain(value)) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return None if value is None else plain(Decimal(str(value)))


def plain(value: Decimal) -> Decimal:
    """Without trailing zeros and without an exponent: PostgreSQL's ``0.350000`` and SQLite's ``0.35`` read alike."""
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal.as_tuple().exponent > 0 else normal  # type: ignore[operator]


class RatePlan(IdMixin, TimestampMixin, Base):
    """A tenant's per-second tariff from ``effective_from`` on; a change is a new plan with a later date."""

    __tablename__ = "rate_plans"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    effective_from: Mapped[date] = mapped_column(Date, nullable=False)
    #: A connected call is billed at least this long (0, 30, 60 …).
    min_billable_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: Billed time is rounded up to a multiple of this (1 = true per-second).
    increment_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    #: How a call's amount is rounded: ``up``, ``half_up`` or ``down``, to ``yen_decimals`` places (0 or 2).
    rounding: Mapped[str] = mapped_column(String(8), nullable=False, default="down")
    yen_decimals: Mapped[int] = mapped_column(Integer, nullable=False, default=2)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    rates: Mapped[list[Rate]] = relationship(
        back_populates="plan", cascade="all, delete-orphan", lazy="selectin", order_by="Rate.id"
    )

    __table_args__ = (
        UniqueConstraint("tenant_id", "name", "effective_from"),
        CheckConstraint("min_billable_seconds BETWEEN 0 AND 3600", name="min_billable_seconds"),
        CheckConstraint("increment_seconds BETWEEN 1 AND 3600", name="increment_seconds"),
        CheckConstraint("rounding IN ('up', 'half_up', 'down')", name="rounding"),
        CheckConstraint("yen_decimals IN (0, 2)", name="yen_decimals"),
    )


class Rate(IdMixin, Base):
    """Yen per second for one direction and one kind of line (see ``billing.rating`` for which line)."""

    __tablename__ = "rates"

    plan_id: Mapped[int] = mapped_column(BigId, ForeignKey("rate_plans.id", ondelete="CASCADE"), nullable=False)
    direction: Mapped[str] = mapped_column(String(10), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    yen_per_second: Mapped[Decimal] = mapped_column(YenRate, nullable=False)

    plan: Mapped[RatePlan] = relationship(back_populates="rates")

    __table_args__ = (
        UniqueConstraint("plan_id", "direction", "kind"),
        CheckConstraint("direction IN ('outbound', 'inbound')", name="direction"),
    )
