"""Queries on campaigns, leads, the do-not-call list and refusals (tenant-scoped)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import case, insert, or_, select

from kakehashi.campaigns.models import Campaign, DncNumber, Lead, Refusal
from kakehashi.kit.repository import TenantRepository

#: Lead states a reservation may pick (``in_progress`` unreserved: tried, waiting for its next try).
WORKABLE = ("new", "in_progress", "callback")
_CHUNK = 1000


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


class CampaignRepository(TenantRepository):
    def get(self, campaign_id: int) -> Campaign | None:
        stmt = select(Campaign).where(Campaign.id == campaign_id)
        return self.session.scalars(self.scoped(stmt, Campaign)).first()

    def by_name(self, name: str) -> Campaign | None:
        stmt = select(Campaign).where(Campaign.name == name)
        return self.session.scalars(self.scoped(stmt, Campaign)).first()

    def all(self) -> list[Campaign]:
        return list(self.session.scalars(self.scoped(select(Campaign).order_by(Campaign.id), Campaign)))

    # -- leads
    def lead(self, campaign_id: int, lead_id: int) -> Lead | None:
        stmt = select(Lead).where(Lead.id == lead_id, Lead.campaign_id == campaign_id)
        return self.session.scalars(self.scoped(stmt, Lead)).first()

    def leads(self, campaign_id: int, *, status: str | None, limit: int, offset: int) -> list[Lead]:
        stmt = select(Lead).where(Lead.campaign_id == campaign_id)
        if status is not None:
            stmt = stmt.where(Lead.status == status)
        stmt = stmt.order_by(Lead.id).limit(limit).offset(offset)
        return list(self.session.scalars(self.scoped(stmt, Lead)))

    def phones_in_campaign(self, campaign_id: int, phones: list[str]) -> set[str]:
        found: set[str] = set()
        for part in _chunks(phones):
            stmt = select(Lead.phone).where(Lead.campaign_id == campaign_id, Lead.phone.in_(part))
            found.update(self.session.scalars(self.scoped(stmt, Lead)))
        return found

    def insert_leads(self, rows: list[dict[str, Any]]) -> None:
        """One multi-row INSERT per thousand leads (no ORM objects, no per-row round trip)."""
        for i in range(0, len(rows), _CHUNK):
            self.session.execute(insert(Lead), [{**r, "tenant_id": self.tenant_id} for r in rows[i : i + _CHUNK]])

    def due_leads(self, campaign_id: int, agent: str, now: datetime, *, limit: int, lock: bool) -> list[Lead]:
        """Unreserved workable leads due at ``now``: this agent's callbacks first, then callbacks anyone may take,
        then the rest by due time and id. ``lock``: ``FOR UPDATE SKIP LOCKED`` — rows another transaction is
        reserving are passed over, not waited for (PostgreSQL; SQLite has one writer and ignores it)."""
        stmt = (
            select(Lead)
            .where(
                Lead.campaign_id == campaign_id,
                Lead.status.in_(WORKABLE),
                Lead.reserved_by.is_(None),
                or_(Lead.next_call_at.is_(None), Lead.next_call_at <= now),
                or_(Lead.callback_agent.is_(None), Lead.callback_agent == agent),
            )
            .order_by(
                case((Lead.callback_agent == agent, 0), else_=1),
                case((Lead.status == "callback", 0), else_=1),
                Lead.next_call_at.is_(None),
                Lead.next_call_at,
                Lead.id,
            )
            .limit(limit)
        )
        if lock:
            stmt = stmt.with_for_update(skip_locked=True)
        return list(self.session.scalars(self.scoped(stmt, Lead)))

    # -- do-not-call list and refusals
    def dnc_all(self) -> list[DncNumber]:
        return list(self.session.scalars(self.scoped(select(DncNumber).order_by(DncNumber.id), DncNumber)))

    def dnc(self, dnc_id: int) -> DncNumber | None:
        stmt = select(DncNumber).where(DncNumber.id == dnc_id)
        return self.session.scalars(self.scoped(stmt, DncNumber)).first()

    def dnc_numbers(self, phones: list[str]) -> set[str]:
        found: set[str] = set()
        for part in _chunks(phones):
            stmt = select(DncNumber.e164).where(DncNumber.e164.in_(part))
            found.update(self.session.scalars(self.scoped(stmt, DncNumber)))
        return found

    def refusals(self, *, active_only: bool) -> list[Refusal]:
        stmt = select(Refusal).order_by(Refusal.id)
        if active_only:
            stmt = stmt.where(Refusal.lifted_at.is_(None))
        return list(self.session.scalars(self.scoped(stmt, Refusal)))

    def refusal(self, refusal_id: int) -> Refusal | None:
        stmt = select(Refusal).where(Refusal.id == refusal_id)
        return self.session.scalars(self.scoped(stmt, Refusal)).first()

    def refused_numbers(self, phones: list[str]) -> set[str]:
        """Numbers with an active company-wide refusal."""
        found: set[str] = set()
        for part in _chunks(phones):
            stmt = select(Refusal.e164).where(Refusal.e164.in_(part), Refusal.lifted_at.is_(None))
            found.update(self.session.scalars(self.scoped(stmt, Refusal)))
        return found
