"""Outbound campaigns, their leads, the center's do-not-call list and refusals (再勧誘の禁止).

A lead is one number to call in one campaign. A refusal is company-wide by default (``scope`` "company"): once a
person said no, no campaign of the tenant calls the number again until an admin lifts it with a reason.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import text

from kakehashi.kit.db import Base, BigId, IdMixin, TimestampMixin, UTCDateTime, utcnow
from kakehashi.kit.types import JsonDoc

KINDS = ("appointment", "research", "marketing", "sales")
DIAL_MODES = ("preview", "progressive", "predictive")
STATUSES = ("draft", "running", "paused", "stopped")
LEAD_STATUSES = ("new", "in_progress", "callback", "done", "unworkable", "excluded")
#: Whom a refusal blocks: every campaign of the tenant (default), or those of the same product line.
REFUSAL_SCOPES = ("company", "product_line")
#: What an attempt's line did (the dialler's view) — ``answered`` is a person (or the agent's call in preview).
ATTEMPT_RESULTS = ("answered", "busy", "no_answer", "machine", "invalid", "failed", "abandoned", "skipped")


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
    #: Who works it: agent names and queue names (an agent of one of the queues works it too).
    agents: Mapped[list[str]] = mapped_column(JsonDoc, nullable=False, default=list)
    queues: Mapped[list[str]] = mapped_column(JsonDoc, nullable=False, default=list)
    #: The campaign's result codes: ``[{"code": disposition code, "human": bool, "contact": bool, "success": bool,
    #: "refusal": bool, "dnc": bool, "callback": bool, "unworkable": bool, "final": bool}]``.
    result_codes: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, nullable=False, default=list)
    #: Seconds a dialled number may ring before the attempt counts as no answer.
    ring_timeout_s: Mapped[int] = mapped_column(Integer, nullable=False, default=30)
    #: Preview mode: dial by itself this many seconds after the card is shown (null: only when the agent presses).
    preview_autodial_s: Mapped[int | None] = mapped_column(Integer)
    #: The product line (refusals with scope "product_line" block only campaigns of the same line).
    product_line: Mapped[str | None] = mapped_column(String(60))
    refusal_scope: Mapped[str] = mapped_column(String(12), nullable=False, default="company")
    #: Predictive mode (``schemas.PredictiveSettings``): the abandon target, lines per agent, calls in flight,
    #: the identification message an abandoned person hears.
    predictive: Mapped[dict[str, Any]] = mapped_column(JsonDoc, nullable=False, default=dict)
    #: Answering-machine detection (``schemas.AmdSettings``): on or off, the action for a machine, the detector's
    #: parameters.
    amd: Mapped[dict[str, Any]] = mapped_column(JsonDoc, nullable=False, default=dict)

    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        CheckConstraint(f"kind IN {KINDS}", name="kind"),
        CheckConstraint(f"dial_mode IN {DIAL_MODES}", name="dial_mode"),
        CheckConstraint(f"status IN {STATUSES}", name="status"),
        CheckConstraint(f"refusal_scope IN {REFUSAL_SCOPES}", name="refusal_scope"),
    )


class CampaignList(IdMixin, Base):
    """One upload (or one segment run) into a campaign: where its people came from (APPI 取得元) and how the
    load went. Results are reported per list; the simulator calls a list's numbers with its outcome mix."""

    __tablename__ = "campaign_lists"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaigns.id"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    #: The APPI source record of the people on it (``data_sources.id``), as for a customer import.
    source_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("data_sources.id"))
    segment_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("segments.id"))
    filename: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    rows_total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rows_loaded: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rows_bad: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rows_scrubbed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: The simulator's outcome mix for this list's numbers: ``{"answer": 0.4, "busy": 0.1, "no_answer": 0.3,
    #: "answering_machine": 0.15, "invalid": 0.05}`` (null: the simulator's default).
    sim_outcomes: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)


class Segment(IdMixin, TimestampMixin, Base):
    """A saved target extraction (ターゲット抽出) over the customer master, optionally re-run on a schedule into
    a campaign (only customers not already in it)."""

    __tablename__ = "segments"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    criteria: Mapped[dict[str, Any]] = mapped_column(JsonDoc, nullable=False, default=dict)
    campaign_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("campaigns.id"))
    #: ``{"weekdays": [0], "time": "09:00"}`` (Japan time) or null: run by hand only.
    schedule: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100), nullable=False)

    __table_args__ = (UniqueConstraint("tenant_id", "name"),)


class Lead(IdMixin, Base):
    __tablename__ = "leads"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaigns.id"), nullable=False)
    customer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customers.id"))
    list_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("campaign_lists.id"))
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
        # Due leads by status and time, then id: never-tried leads (next_call_at null) come straight from it in
        # the reservation's order (ADR 0022).
        Index("ix_leads_campaign_status_next", "campaign_id", "status", "next_call_at", "id"),
        # An agent's callbacks to make (the desk reads them with every refresh): only leads waiting for one.
        Index(
            "ix_leads_callbacks_by_agent",
            "tenant_id",
            "callback_agent",
            "next_call_at",
            postgresql_where=text("status = 'callback'"),
            sqlite_where=text("status = 'callback'"),
        ),
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

    #: With scope "product_line": the line it blocks.
    product_line: Mapped[str | None] = mapped_column(String(60))

    __table_args__ = (Index("ix_refusals_tenant_e164", "tenant_id", "e164"),)


class LeadAttempt(IdMixin, Base):
    """One try at a lead: what the line did, what the agent recorded, and the times the results count.

    Written when the try starts (the dial, or the agent's skip) and completed as it goes; the campaign's results
    (dials, contacts, success, refusals, abandons, talk and wrap-up time) are sums over these rows."""

    __tablename__ = "lead_attempts"

    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id"), nullable=False)
    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaigns.id"), nullable=False)
    lead_id: Mapped[int] = mapped_column(BigId, ForeignKey("leads.id"), nullable=False, index=True)
    list_id: Mapped[int | None] = mapped_column(BigId)
    agent: Mapped[str | None] = mapped_column(String(100))
    mode: Mapped[str] = mapped_column(String(12), nullable=False)  # preview | progressive | manual
    call_ref: Mapped[str | None] = mapped_column(String(100), index=True)
    #: The line's result (ATTEMPT_RESULTS); null while the call is still up.
    result: Mapped[str | None] = mapped_column(String(12))
    disposition: Mapped[str | None] = mapped_column(String(40))
    human: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    contact: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    success: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    refusal: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: 特定商取引法 Art.16: when the agent confirmed the opening statement was given on this call.
    opening_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    skip_reason: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    talk_seconds: Mapped[Decimal] = mapped_column(Numeric(12, 3), nullable=False, default=0)
    wrap_seconds: Mapped[Decimal] = mapped_column(Numeric(12, 3), nullable=False, default=0)

    __table_args__ = (
        Index("ix_lead_attempts_campaign_started", "campaign_id", "started_at"),
        CheckConstraint(f"result IN {ATTEMPT_RESULTS}", name="result"),
    )
