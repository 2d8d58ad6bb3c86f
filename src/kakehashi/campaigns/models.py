"""Outbound campaigns, their leads, the center's do-not-call list and refusals (再勧誘の禁止).

A lead is one number to call in one campaign. A refusal is company-wide by default (``scope`` "company"): once a
person said no, no campaign of the tenant calls the number again until an admin lifts it with a reason.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kakehashi.kit.db import Base, BigId, IdMixin, TimestampMixin, UTCDateTime, utcnow
from kakehashi.kit.types import JsonDoc

KINDS = ("appointment", "research", "marketing", "sales")
DIAL_MODES = ("preview", "progressive")
STATUSES = ("draft", "running", "paused", "stopped")
LEAD_STATUSES = ("new", "in_progress", "callback", "done", "unworkable", "excluded")


class Campaign(IdMixin, TimestampMixin, Base):
    __tablename__ = "campaigns"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    kind: Mapped[str] = mapped_column(String(12), nullable=False)
    caller_id: Mapped[str] = mapped_column(String(20), nullable=False)
    dial_mode: Mapped[str] = mapped_column(String(12), nullable=False, default="preview")
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="draft")
    goal: Mapped[int | None] = mapped_column(Integer)
    owner: Mapped[str] = mapped_column(String(100), nullable=False)
    #: What the caller says first (特定商取引法 Art.16: company, caller's name, that it is a sales call, what for).
    opening_statement: Mapped[str] = mapped_column(Text, nullable=False, default="")
    #: ``[{"weekday": 0-6 (Monday 0), "start": "HH:MM", "end": "HH:MM"}]`` in Japan time.
    windows: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, nullable=False, default=list)
    holidays_off: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    #: Why calling between 21:00 and 08:00 is acceptable here; without it no window may touch those hours.
    night_reason: Mapped[str | None] = mapped_column(Text)
    #: ``{"delays": {outcome: minutes or null}, "max_attempts": n, "max_per_day": n}``.
    retry_rules: Mapped[dict[str, Any]] = mapped_column(JsonDoc, nullable=False, default=dict)

    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        CheckConstraint(f"kind IN {KINDS}", name="kind"),
        CheckConstraint(f"dial_mode IN {DIAL_MODES}", name="dial_mode"),
        CheckConstraint(f"status IN {STATUSES}", name="status"),
    )


class Lead(IdMixin, Base):
    __tablename__ = "leads"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaigns.id"), nullable=False)
    customer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customers.id"))
    phone: Mapped[str] = mapped_column(String(20), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="new")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    attempts_today: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: The Japanese date ``attempts_today`` counts.
    attempts_day: Mapped[date | None] = mapped_column(Date)
    last_result: Mapped[str | None] = mapped_column(String(40))
    next_call_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_agent: Mapped[str | None] = mapped_column(String(100))
    reserved_by: Mapped[str | None] = mapped_column(String(100))
    reserved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    __table_args__ = (
        UniqueConstraint("campaign_id", "phone"),
        CheckConstraint(f"status IN {LEAD_STATUSES}", name="status"),
        Index("ix_leads_campaign_status_next", "campaign_id", "status", "next_call_at"),
    )


class DncNumber(IdMixin, Base):
    """The center's own do-not-call list, per tenant."""

    __tablename__ = "dnc_numbers"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    e164: Mapped[str] = mapped_column(String(20), nullable=False)
    reason: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    added_by: Mapped[str] = mapped_column(String(100), nullable=False)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    __table_args__ = (UniqueConstraint("tenant_id", "e164"),)


class Refusal(IdMixin, Base):
    """Someone said they do not want to be called (特定商取引法 Art.17, 再勧誘の禁止). Active while not lifted."""

    __tablename__ = "refusals"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    e164: Mapped[str] = mapped_column(String(20), nullable=False)
    scope: Mapped[str] = mapped_column(String(12), nullable=False, default="company")
    campaign_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("campaigns.id"))
    by: Mapped[str] = mapped_column(String(100), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(100))
    lifted_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_refusals_tenant_e164", "tenant_id", "e164"),)
