"""Agents, their skills, break reasons (aux codes) and every state they were in, with start and end."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kakehashi.kit.db import Base, BigId, IdMixin, TimestampMixin, UTCDateTime


class Agent(IdMixin, TimestampMixin, Base):
    """A person who takes calls. ``name`` is how the phone system knows them (their login name)."""

    __tablename__ = "agents"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False, index=True)
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), unique=True)
    name: Mapped[str] = mapped_column(String(60), nullable=False, unique=True)
    display_name: Mapped[str] = mapped_column(String(100), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="logged_out")
    state_reason: Mapped[str | None] = mapped_column(String(20))
    state_since: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class AgentSkill(IdMixin, Base):
    """A skill an agent has; level 1 is the most skilled (a call tries level 1 before level 2)."""

    __tablename__ = "agent_skills"

    agent_id: Mapped[int] = mapped_column(BigId, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False)
    skill: Mapped[str] = mapped_column(String(60), nullable=False)
    level: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __table_args__ = (
        UniqueConstraint("agent_id", "skill"),
        CheckConstraint("level BETWEEN 1 AND 9", name="level"),
    )


class AuxCode(IdMixin, Base):
    """A break reason (離席理由): lunch, training, meeting…"""

    __tablename__ = "aux_codes"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    code: Mapped[str] = mapped_column(String(20), nullable=False)
    label: Mapped[str] = mapped_column(String(60), nullable=False)

    __table_args__ = (UniqueConstraint("tenant_id", "code"),)


class AgentStateSpan(IdMixin, Base):
    """One stretch of time an agent spent in one state; ``ended_at`` is NULL for the current one."""

    __tablename__ = "agent_state_spans"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    agent_id: Mapped[int] = mapped_column(BigId, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(20))
    queue: Mapped[str | None] = mapped_column(String(60))
    call_ref: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_agent_state_spans_tenant_started", "tenant_id", "started_at"),
        Index("ix_agent_state_spans_agent_started", "agent_id", "started_at"),
    )
