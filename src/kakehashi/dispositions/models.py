"""The tenant's result codes. A call stores the code's text, so reports keep grouping by it after a code is
retired (``active`` False) — rows are never deleted."""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kakehashi.kit.db import Base, BigId, IdMixin, TimestampMixin

#: What a result means for reports: an order or contract (a conversion), a conversation, a promised call back,
#: no conversation with the right person (wrong number, silent call), anything else.
KINDS = ("sale", "contact", "callback", "no_contact", "other")


class Disposition(IdMixin, TimestampMixin, Base):
    __tablename__ = "dispositions"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    code: Mapped[str] = mapped_column(String(40), nullable=False)
    label_en: Mapped[str | None] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(12), nullable=False, default="contact")
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    __table_args__ = (UniqueConstraint("tenant_id", "code"), CheckConstraint(f"kind IN {KINDS}", name="kind"))
