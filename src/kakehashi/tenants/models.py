from __future__ import annotations

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from kakehashi.kit.db import Base, IdMixin, TimestampMixin


class Tenant(IdMixin, TimestampMixin, Base):
    """A client company of the center, or the center itself. Every record belongs to one."""

    __tablename__ = "tenants"

    code: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    # Client viewers see masked personal data unless the tenant decided otherwise (APPI: need to know).
    client_sees_personal_data: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
