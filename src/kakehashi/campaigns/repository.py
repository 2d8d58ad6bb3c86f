"""Queries on campaigns, leads, the do-not-call list and refusals (tenant-scoped)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import psycopg
from sqlalchemy import BindParameter, ColumnElement, Row, Select, and_, case, func, insert, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import any_, bindparam
from sqlalchemy.types import String

from kakehashi.campaigns.models import Campaign, DncNumber, Lead, LeadAttempt, Refusal
from kakehashi.kit.db import utcnow
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
        for condition in self._among(Lead.phone, phones):
            stmt = select(Lead.phone).where(Lead.campaign_id == campaign_id, condition)
            found.update(self.session.scalars(self.scoped(stmt, Lead)))
        return found

    def _among(self, column: Any, values: list[str]) -> Iterable[ColumnElement[bool]]:
        """``column IN values`` in as few conditions as possible: on PostgreSQL one array parameter
        (``= ANY(:values)``; an IN list of a thousand bound values costs ~25 ms a query to parse and plan under
        load — a campaign list's scrub asks four of them a batch), elsewhere IN lists of a thousand."""
        if self.session.get_bind().dialect.name == "postgresql":
            if values:
                yield column == any_(bindparam("values", values, type_=postgresql.ARRAY(String())))
            return
        yield from (column.in_(part) for part in _chunks(values))

    def insert_leads(self, rows: list[dict[str, Any]]) -> None:
        """Insert leads in bulk, no ORM objects: on PostgreSQL one ``COPY`` (a multi-row INSERT of a thousand
        leads took ~230 ms under load, the COPY a fraction of it), elsewhere one multi-row INSERT per thousand.
        Every row has the same keys (the columns written; ``created_at`` is now unless given)."""
        if not rows:
            return
        keys = [k for k in rows[0] if k != "tenant_id"]
        if self.session.get_bind().dialect.name == "postgresql" and all(r.keys() == rows[0].keys() for r in rows):
            columns = ["tenant_id", *keys] + ([] if "created_at" in keys else ["created_at"])
            tail = "\n" if "created_at" in keys else f"\t{_copy_text(utcnow())}\n"
            head = f"{self.tenant_id}\t"
            lines = [head + "\t".join(_copy_text(r[k]) for k in keys) + tail for r in rows]
            raw = self.session.connection().connection.driver_connection
            assert isinstance(raw, psycopg.Connection)
            with raw.cursor() as cur, cur.copy(f"COPY leads ({', '.join(columns)}) FROM STDIN") as copy:
                copy.write("".join(lines))
            return
        for i in range(0, len(rows), _CHUNK):
            self.session.execute(insert(Lead), [{**r, "tenant_id": self.tenant_id} for r in rows[i : i + _CHUNK]])

    def due_leads(self, campaign_id: int, agent: str, now: datetime, *, limit: int, lock: bool) -> list[Lead]:
        """Unreserved workable leads due at ``now``: this agent's callbacks first, then callbacks anyone may take,
        then the rest by due time and id. ``lock``: ``FOR UPDATE SKIP LOCKED`` — rows another transaction is
        reserving are passed over, not waited for (PostgreSQL; SQLite has one writer and ignores it).

        Four queries in that order, each served by the index on (campaign_id, status, next_call_at, id), until
        ``limit`` are found: callbacks due; tries due again, by due time; tries interrupted (``in_progress`` freed
        with no next time: a released reservation), by id; never-tried leads, by id (straight from the index).
        One query with one ORDER BY of CASE expressions sorted every workable lead at each reservation: at 100,000
        leads an external sort to disk, 0.1–2 s a reservation; and ``ORDER BY id`` over both statuses walked the
        primary key past every lead already tried (docs/benchmarks.md, issue 17)."""
        base = (
            Lead.campaign_id == campaign_id,
            Lead.reserved_by.is_(None),
            or_(Lead.callback_agent.is_(None), Lead.callback_agent == agent),
        )
        tries = Lead.status.in_([s for s in WORKABLE if s != "callback"])
        untimed = Lead.next_call_at.is_(None)
        steps: tuple[tuple[tuple[ColumnElement[bool], ...], tuple[Any, ...]], ...] = (
            (  # callbacks due, this agent's personal ones first
                (Lead.status == "callback", or_(untimed, Lead.next_call_at <= now)),
                (case((Lead.callback_agent == agent, 0), else_=1), untimed, Lead.next_call_at, Lead.id),
            ),
            ((tries, Lead.next_call_at <= now), (Lead.next_call_at, Lead.id)),  # tries due again, by due time
            ((Lead.status == "in_progress", untimed), (Lead.next_call_at, Lead.id)),  # interrupted tries, by id
            ((Lead.status == "new", untimed), (Lead.next_call_at, Lead.id)),  # never tried, by id
        )
        found: list[Lead] = []
        for conditions, order in steps:
            if len(found) >= limit:
                break
            stmt = select(Lead).where(*base, *conditions).order_by(*order).limit(limit - len(found))
            if lock:
                stmt = stmt.with_for_update(skip_locked=True)
            found.extend(self.session.scalars(self.scoped(stmt, Lead)))
        return found

    # -- do-not-call list and refusals
    def dnc_all(self) -> list[DncNumber]:
        return list(self.session.scalars(self.scoped(select(DncNumber).order_by(DncNumber.id), DncNumber)))

    def dnc(self, dnc_id: int) -> DncNumber | None:
        stmt = select(DncNumber).where(DncNumber.id == dnc_id)
        return self.session.scalars(self.scoped(stmt, DncNumber)).first()

    def dnc_numbers(self, phones: list[str]) -> set[str]:
        found: set[str] = set()
        for condition in self._among(DncNumber.e164, phones):
            stmt = select(DncNumber.e164).where(condition)
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

    def refused_numbers(
        self, phones: list[str], *, product_line: str | None = None, every_scope: bool = True
    ) -> set[str]:
        """Numbers with an active refusal that blocks: with ``every_scope`` any refusal in force (a call outside
        any campaign, or when in doubt); else the company-wide ones and those of ``product_line``."""
        found: set[str] = set()
        for condition in self._among(Refusal.e164, phones):
            stmt = select(Refusal.e164).where(condition, Refusal.lifted_at.is_(None))
            if not every_scope:
                stmt = stmt.where(_blocks(product_line))
            found.update(self.session.scalars(self.scoped(stmt, Refusal)))
        return found

    def refusal_in_force(self, e164: str, *, product_line: str | None, every_scope: bool) -> Refusal | None:
        """The oldest active refusal of ``e164`` that blocks (as :meth:`refused_numbers` counts them)."""
        stmt = select(Refusal).where(Refusal.e164 == e164, Refusal.lifted_at.is_(None))
        if not every_scope:
            stmt = stmt.where(_blocks(product_line))
        return self.session.scalars(self.scoped(stmt.order_by(Refusal.id).limit(1), Refusal)).first()

    # -- do-not-call list in bulk (compliance)
    def insert_dnc(self, rows: list[dict[str, Any]], added_at: datetime) -> None:
        """Add entries (numbers already checked absent): on PostgreSQL one ``COPY`` in the session's transaction
        (psycopg sends an executemany as one INSERT a row: 50,000 entries took 1.3 s against 2.2–2.7 s in the same
        run, load ~25); elsewhere an executemany a thousand at a time."""
        if not rows:
            return
        if self.session.get_bind().dialect.name == "postgresql":
            import psycopg  # the PostgreSQL driver, only on that path

            raw = self.session.connection().connection.driver_connection
            assert isinstance(raw, psycopg.Connection)
            sql = "COPY dnc_numbers (tenant_id, e164, reason, added_by, added_at) FROM STDIN"
            with raw.cursor() as cursor, cursor.copy(sql) as copy:
                for r in rows:
                    copy.write_row((self.tenant_id, r["e164"], r["reason"], r["added_by"], added_at))
            return
        for i in range(0, len(rows), _CHUNK):
            values = [{**r, "tenant_id": self.tenant_id, "added_at": added_at} for r in rows[i : i + _CHUNK]]
            self.session.execute(insert(DncNumber), values)

    # -- reservations that outlived their agent (compliance)
    def reserved_leads(
        self, *, before: datetime | None = None, agent: str | None = None, campaign_id: int | None = None
    ) -> list[Lead]:
        """Reserved leads (reserved before ``before``, by ``agent``, of ``campaign_id``), locked on PostgreSQL
        (SKIP LOCKED: a lead whose outcome is being recorded right now is left to that transaction)."""
        stmt = select(Lead).where(Lead.reserved_by.is_not(None))
        if campaign_id is not None:
            stmt = stmt.where(Lead.campaign_id == campaign_id)
        if before is not None:
            stmt = stmt.where(Lead.reserved_at < before)
        if agent is not None:
            stmt = stmt.where(Lead.reserved_by == agent)
        stmt = stmt.order_by(Lead.id)
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        return list(self.session.scalars(self.scoped(stmt, Lead)))

    def attempts_in_reservation(self, lead_ids: list[int]) -> dict[int, tuple[int, bool]]:
        """Per reserved lead, the attempts started since its reservation and whether one is still open."""
        found: dict[int, tuple[int, bool]] = {}
        still_open = func.sum(case((LeadAttempt.ended_at.is_(None), 1), else_=0))
        for i in range(0, len(lead_ids), _CHUNK):
            stmt = (
                select(LeadAttempt.lead_id, func.count(), still_open)
                .join(Lead, Lead.id == LeadAttempt.lead_id)
                .where(
                    LeadAttempt.lead_id.in_(lead_ids[i : i + _CHUNK]),
                    LeadAttempt.started_at >= Lead.reserved_at,
                    LeadAttempt.call_ref.is_not(None),  # dialled: a card only looked at is no attempt
                )
                .group_by(LeadAttempt.lead_id)
            )
            for lead_id, count, opened in self.session.execute(self.scoped(stmt, LeadAttempt)):
                found[lead_id] = (int(count), bool(opened))
        return found

    # -- a number's history across campaigns (the screen pop)
    def lead_history(self, e164: str, limit: int) -> list[Row[Any]]:
        """The leads of ``e164`` in every campaign of the tenant, newest first: id, campaign_id, customer_id, status,
        attempts, last_result, the campaign's ``name`` and ``last_at`` (the start of the last attempt).
        One prebuilt Core statement (:data:`_LEAD_HISTORY`), tenant bound as a parameter."""
        params = {"tenant_id": self.tenant_id, "e164": e164, "limit": limit}
        return list(self.session.execute(_LEAD_HISTORY, params))


def _lead_history_statement() -> Select[Any]:
    """A number's leads across the tenant's campaigns (the screen pop runs it on every call, so it is built once, as
    ``customers.repository`` builds the card's statement, instead of through the ORM: 0.46 against 2.7 ms at p50 on
    a loaded machine). Reached through the campaigns' ids, so each campaign is one probe of the (campaign_id, phone)
    unique index, and the last attempt one probe of ``ix_lead_attempts_lead_id`` per lead — no scan of the leads or
    the attempts, however long the lists. The tenant filter is written here (``tenant_id`` on every table read)."""
    lead, campaign, attempt = Lead.__table__, Campaign.__table__, LeadAttempt.__table__
    tenant: BindParameter[int] = bindparam("tenant_id")
    last_at = select(func.max(attempt.c.started_at)).where(attempt.c.lead_id == lead.c.id).scalar_subquery()
    campaign_ids = select(campaign.c.id).where(campaign.c.tenant_id == tenant)
    return (
        select(
            lead.c.id,
            lead.c.campaign_id,
            lead.c.customer_id,
            lead.c.status,
            lead.c.attempts,
            lead.c.last_result,
            campaign.c.name,
            last_at.label("last_at"),
        )
        .select_from(lead.join(campaign, campaign.c.id == lead.c.campaign_id))
        .where(lead.c.campaign_id.in_(campaign_ids), lead.c.phone == bindparam("e164"), lead.c.tenant_id == tenant)
        .order_by(lead.c.id.desc())
        .limit(bindparam("limit"))
    )


_LEAD_HISTORY = _lead_history_statement()


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: Any) -> str:
    """A value in COPY's text format (``\\N`` is NULL; backslash, tab and line breaks escaped)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value).translate(_COPY_ESCAPES)


def _blocks(product_line: str | None) -> ColumnElement[bool]:
    """A refusal that blocks a campaign of ``product_line``: company-wide, or of the same line."""
    if product_line is None:
        return Refusal.scope == "company"
    return or_(Refusal.scope == "company", and_(Refusal.scope == "product_line", Refusal.product_line == product_line))


def tenants_with_reservations_before(session: Session, before: datetime) -> list[int]:
    """The tenants holding a lead reserved before ``before`` — crosses tenants on purpose: the periodic job that
    frees stale reservations (``compliance.release_stale_everywhere``) then works each tenant on its own."""
    stmt = select(Lead.tenant_id).where(Lead.reserved_by.is_not(None), Lead.reserved_at < before).distinct()
    return sorted(session.scalars(stmt))
