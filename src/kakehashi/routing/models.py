"""Inbound numbers, queues with their members, callback requests and voicemail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kakehashi.kit.db import Base, BigId, IdMixin, TimestampMixin, UTCDateTime
from kakehashi.kit.types import JsonDoc

STRATEGIES = ("longest_idle", "fewest_calls", "round_robin", "ring_all")
OVERFLOW_ACTIONS = ("none", "queue", "voicemail", "callback")


class Queue(IdMixin, TimestampMixin, Base):
    """An ACD queue. Members come from ``queue_members`` or, when ``skill`` is set, from every agent with that
    skill (their skill level is their member level)."""

    __tablename__ = "queues"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    label: Mapped[str] = mapped_column(String(100), nullable=False)
    strategy: Mapped[str] = mapped_column(String(16), nullable=False, default="longest_idle")
    skill: Mapped[str | None] = mapped_column(String(60))
    weight: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    wrap_up_s: Mapped[int] = mapped_column(Integer, nullable=False, default=30)
    ring_timeout_s: Mapped[int] = mapped_column(Integer, nullable=False, default=15)
    max_wait_s: Mapped[int | None] = mapped_column(Integer)
    max_length: Mapped[int | None] = mapped_column(Integer)
    overflow_action: Mapped[str] = mapped_column(String(10), nullable=False, default="none")
    overflow_queue: Mapped[str | None] = mapped_column(String(60))
    escalation: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, nullable=False, default=list)
    rank_priority: Mapped[dict[str, Any]] = mapped_column(JsonDoc, nullable=False, default=dict)
    sticky_agent_minutes: Mapped[int | None] = mapped_column(Integer)
    sl_threshold_s: Mapped[int] = mapped_column(Integer, nullable=False, default=20)
    # What the wallboard holds the queue to: the share answered within T it aims for (80: "80/20") and the wait
    # that raises an alert (None: T itself, past which each waiting caller is already a miss).
    sl_target_pct: Mapped[int] = mapped_column(Integer, nullable=False, default=80)
    wait_alert_s: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        CheckConstraint(f"strategy IN {STRATEGIES}", name="strategy"),
        CheckConstraint(f"overflow_action IN {OVERFLOW_ACTIONS}", name="overflow_action"),
    )


class QueueMember(IdMixin, Base):
    """An agent in a queue at a level (1 is tried first; like a penalty in Asterisk)."""

    __tablename__ = "queue_members"

    queue_id: Mapped[int] = mapped_column(BigId, ForeignKey("queues.id", ondelete="CASCADE"), nullable=False)
    agent_id: Mapped[int] = mapped_column(BigId, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False)
    level: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __table_args__ = (UniqueConstraint("queue_id", "agent_id"), CheckConstraint("level BETWEEN 1 AND 9", name="level"))


class InboundNumber(IdMixin, TimestampMixin, Base):
    """A number callers dial (DNIS): whose it is, and which IVR flow or queue answers it."""

    __tablename__ = "inbound_numbers"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False, index=True)
    number_e164: Mapped[str] = mapped_column(String(20), nullable=False, unique=True)
    label: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    flow: Mapped[str | None] = mapped_column(String(60))
    queue: Mapped[str | None] = mapped_column(String(60))


class Callback(IdMixin, Base):
    """A caller asked to be called back instead of waiting; ``place_at`` keeps their place in the queue."""

    __tablename__ = "callbacks"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    queue: Mapped[str] = mapped_column(String(60), nullable=False)
    number_e164: Mapped[str] = mapped_column(String(20), nullable=False)
    caller_id: Mapped[str | None] = mapped_column(String(40))  # shown to the customer: the number they had dialled
    origin_call_ref: Mapped[str] = mapped_column(String(100), nullable=False)
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    place_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    agent: Mapped[str | None] = mapped_column(String(60))
    last_call_ref: Mapped[str | None] = mapped_column(String(100))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_callbacks_tenant_status_place", "tenant_id", "status", "place_at"),
        CheckConstraint("status IN ('pending', 'dialing', 'done', 'failed')", name="status"),
    )


class Voicemail(IdMixin, Base):
    """A message a caller left (the queue was full or closed)."""

    __tablename__ = "voicemails"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    queue: Mapped[str | None] = mapped_column(String(60))
    number_e164: Mapped[str | None] = mapped_column(String(20))
    call_ref: Mapped[str] = mapped_column(String(100), nullable=False)
    recording_ref: Mapped[str | None] = mapped_column(String(200))
    left_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="new")

    __table_args__ = (Index("ix_voicemails_tenant_left", "tenant_id", "left_at"),)
