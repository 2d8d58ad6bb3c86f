"""Queries on segments (ターゲット抽出) and their runs: the saved segments, the counts of a criteria's customers by
scrub reason, the customers already in a campaign, and the scheduler's due segments (across tenants)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, select, text
from sqlalchemy.orm import Session

from kakehashi.campaigns.models import CampaignList, DncNumber, Lead, Refusal, Segment
from kakehashi.kit.repository import TenantRepository


def due_segment_ids(session: Session, now: datetime) -> list[tuple[int, int]]:
    """(segment id, tenant id) of every scheduled segment due at ``now``, across tenants: the scheduler's start
    (each is then run in its own transaction, in its own tenant)."""
    stmt = (
        select(Segment.id, Segment.tenant_id)
        .where(Segment.next_run_at.is_not(None), Segment.next_run_at <= now)
        .order_by(Segment.next_run_at, Segment.id)
    )
    return [(row.id, row.tenant_id) for row in session.execute(stmt)]


class SegmentRepository(TenantRepository):
    def get(self, segment_id: int, *, lock: bool = False) -> Segment | None:
        """The segment; ``lock``: ``FOR UPDATE SKIP LOCKED`` (PostgreSQL) — None while another process runs it."""
        stmt = self.scoped(select(Segment).where(Segment.id == segment_id), Segment)
        if lock:
            stmt = stmt.with_for_update(skip_locked=True)
        return self.session.scalars(stmt).first()

    def by_name(self, name: str) -> Segment | None:
        return self.session.scalars(self.scoped(select(Segment).where(Segment.name == name), Segment)).first()

    def all(self) -> list[Segment]:
        return list(self.session.scalars(self.scoped(select(Segment).order_by(Segment.name, Segment.id), Segment)))

    def add(self, segment: Segment) -> Segment:
        segment.tenant_id = self.tenant_id
        self.session.add(segment)
        self.session.flush()
        return segment

    def add_list(self, row: CampaignList) -> CampaignList:
        row.tenant_id = self.tenant_id
        self.session.add(row)
        self.session.flush()
        return row

    def unlink_lists(self, segment_id: int) -> None:
        """Keep a deleted segment's lists (their leads' origin) without the dangling reference."""
        for row in self.session.scalars(
            self.scoped(select(CampaignList).where(CampaignList.segment_id == segment_id), CampaignList)
        ):
            row.segment_id = None

    def count(self, ids: Select[Any]) -> int:
        return int(self.session.execute(select(func.count()).select_from(ids.subquery())).scalar_one())

    def customer_ids_in_campaign(self, campaign_id: int) -> Select[Any]:
        """Customers with a lead in the campaign (whatever its state)."""
        stmt = select(Lead.customer_id).where(Lead.campaign_id == campaign_id, Lead.customer_id.is_not(None))
        return self.scoped(stmt, Lead)

    def phones_in_campaign(self, campaign_id: int) -> Select[Any]:
        return self.scoped(select(Lead.phone).where(Lead.campaign_id == campaign_id), Lead)

    def counts_by_reason(self, rows: Select[Any]) -> dict[str | None, int]:
        """``rows`` (customer_id, e164, block) grouped by the first reason each may not be called — its block,
        ``no_phone``, an active refusal of the number (``refused``), the DNC list (``dnc``) — or None: callable.
        One statement; refusals and the DNC list are joined once (hash joins), not looked up per customer."""
        r = rows.subquery("r")
        refused = (
            select(Refusal.e164)
            .where(Refusal.tenant_id == self.tenant_id, Refusal.lifted_at.is_(None))
            .distinct()
            .subquery("refused")
        )
        dnc = select(DncNumber.e164).where(DncNumber.tenant_id == self.tenant_id).distinct().subquery("dnc")
        reason = case(
            (r.c.block.is_not(None), r.c.block),
            (r.c.e164.is_(None), "no_phone"),
            (refused.c.e164.is_not(None), "refused"),
            (dnc.c.e164.is_not(None), "dnc"),
            else_=None,
        ).label("reason")
        joined = r.outerjoin(refused, refused.c.e164 == r.c.e164).outerjoin(dnc, dnc.c.e164 == r.c.e164)
        # Grouped outside: the CASE's literals are bound parameters, and PostgreSQL does not see two renderings of
        # it (in the select list and in GROUP BY) as one expression.
        reasons = select(reason).select_from(joined).subquery("reasons")
        stmt = select(reasons.c.reason, func.count()).group_by(reasons.c.reason)
        return {row[0]: int(row[1]) for row in self.session.execute(stmt)}

    def limit_time(self, milliseconds: int) -> None:
        """Cap the statements of this transaction (PostgreSQL ``SET LOCAL statement_timeout``; SQLite: nothing).
        A live count must not hold a connection for long whatever the criteria."""
        if self._postgres():
            self.session.execute(text(f"SET LOCAL statement_timeout = {int(milliseconds)}"))

    def plan_for_whole_segments(self, on: bool = True) -> None:
        """PostgreSQL plans for statements over a whole segment (until called with ``on`` false): no JIT (compiling
        cost ~0.9 s of a 2.5 s count over 100,000 customers) and no nested loops — the estimate of a composed
        criteria can be off by a thousand (the latest call's result), and a nested loop over the main numbers then
        ran for minutes; hash joins take ~1 s at worst. SQLite: nothing."""
        if self._postgres():
            self.session.execute(text(f"SET LOCAL jit = {'off' if on else 'on'}"))
            self.session.execute(text(f"SET LOCAL enable_nestloop = {'off' if on else 'on'}"))

    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"
