"""Calls, their state history, and the CDR written when a call ends."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kakehashi.kit.db import Base, BigId, IdMixin, UTCDateTime, utcnow
from kakehashi.kit.types import JsonDoc


class Call(IdMixin, Base):
    """One call as the CTI sees it; its state is written on every transition, so a restart loses nothing."""

    __tablename__ = "calls"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    driver: Mapped[str] = mapped_column(String(16), nullable=False)
    ref: Mapped[str] = mapped_column(String(100), nullable=False)  # the driver's call reference
    direction: Mapped[str] = mapped_column(String(10), nullable=False)
    ani_raw: Mapped[str] = mapped_column(String(40), nullable=False)
    ani_e164: Mapped[str | None] = mapped_column(String(20))
    dnis: Mapped[str] = mapped_column(String(40), nullable=False)
    customer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customers.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(12), nullable=False)
    agent: Mapped[str | None] = mapped_column(String(60))
    queue: Mapped[str | None] = mapped_column(String(60))
    campaign_id: Mapped[int | None] = mapped_column(BigId)
    lead_id: Mapped[int | None] = mapped_column(BigId)  # the campaign's lead an outbound call dials
    digits: Mapped[str | None] = mapped_column(String(40))
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ivr_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ringing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wrap_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    held_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hold_seconds: Mapped[Decimal] = mapped_column(Numeric(12, 3), nullable=False, default=0)
    end_cause: Mapped[str | None] = mapped_column(String(20))
    disposition: Mapped[str | None] = mapped_column(String(40))
    recording_ref: Mapped[str | None] = mapped_column(String(200))
    recording_state: Mapped[str | None] = mapped_column(String(10))
    transferred_to: Mapped[str | None] = mapped_column(String(60))
    consult_agent: Mapped[str | None] = mapped_column(String(60))  # consulted for an attended transfer, now
    notes: Mapped[str | None] = mapped_column(Text)  # the agent's wrap-up notes

    __table_args__ = (
        Index("uq_calls_driver_ref", "driver", "ref", unique=True),
        Index("ix_calls_tenant_offered_at", "tenant_id", "offered_at"),
        Index("ix_calls_tenant_state", "tenant_id", "state"),
    )


class CallTransition(IdMixin, Base):
    """The state history of a call (what happened when), for timelines and metrics."""

    __tablename__ = "call_transitions"

    call_id: Mapped[int] = mapped_column(BigId, ForeignKey("calls.id", ondelete="CASCADE"), nullable=False, index=True)
    from_state: Mapped[str | None] = mapped_column(String(12))
    to_state: Mapped[str] = mapped_column(String(12), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)


class Cdr(IdMixin, Base):
    """Call detail record: written once, in the transaction that ends the call."""

    __tablename__ = "cdrs"

    call_id: Mapped[int] = mapped_column(BigId, ForeignKey("calls.id", ondelete="CASCADE"), nullable=False, unique=True)
    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    direction: Mapped[str] = mapped_column(String(10), nullable=False)
    ani_e164: Mapped[str | None] = mapped_column(String(20))
    dnis: Mapped[str] = mapped_column(String(40), nullable=False)
    customer_id: Mapped[int | None] = mapped_column(BigId)
    agent: Mapped[str | None] = mapped_column(String(60))
    queue: Mapped[str | None] = mapped_column(String(60))
    campaign_id: Mapped[int | None] = mapped_column(BigId)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ring_seconds: Mapped[Decimal] = mapped_column(Numeric(12, 3), nullable=False, default=0)
    queue_seconds: Mapped[Decimal] = mapped_column(Numeric(12, 3), nullable=False, default=0)
    talk_seconds: Mapped[Decimal] = mapped_column(Numeric(12, 3), nullable=False, default=0)
    hold_seconds: Mapped[Decimal] = mapped_column(Numeric(12, 3), nullable=False, default=0)
    wrap_up_seconds: Mapped[Decimal] = mapped_column(Numeric(12, 3), nullable=False, default=0)
    final_state: Mapped[str] = mapped_column(String(12), nullable=False)
    end_cause: Mapped[str | None] = mapped_column(String(20))
    disposition: Mapped[str | None] = mapped_column(String(40))
    recording_ref: Mapped[str | None] = mapped_column(String(200))
    billed_seconds: Mapped[int | None] = mapped_column(Integer)
    cost_yen: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        Index("ix_cdrs_tenant_started_at", "tenant_id", "started_at"),
        # Who last talked with a number (sticky routing, a lead calling back): inbound by the caller's number,
        # outbound by the number dialled.
        Index("ix_cdrs_tenant_ani_e164", "tenant_id", "ani_e164"),
        Index("ix_cdrs_tenant_dnis", "tenant_id", "dnis"),
    )
