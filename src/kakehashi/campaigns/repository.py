"""Queries on campaigns, leads, the do-not-call list and refusals (tenant-scoped)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import BindParameter, ColumnElement, Row, Select, and_, case, func, insert, literal, or_, select
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

    def next_due(
        self, campaign_id: int, agent: str, now: datetime, *, product_line: str | None, lock: bool, blocks: Blocks
    ) -> tuple[Lead, str | None] | None:
        """The next unreserved workable lead due at ``now`` for ``agent``, and the reason it may not be called (None:
        none), in one statement (:func:`_next_due_statement`). ``lock``: ``FOR UPDATE SKIP LOCKED`` — rows another
        transaction is reserving are passed over, not waited for (PostgreSQL; SQLite has one writer). ``blocks``:
        the customer flags' SQL from their domain (``customers.service``)."""
        stmt = _next_due_statement(lock, product_line is not None, *blocks)
        params = {"tenant_id": self.tenant_id, "campaign_id": campaign_id, "agent": agent, "now": now}
        if product_line is not None:
            params["product_line"] = product_line
        row = self.session.execute(stmt, params).first()
        return None if row is None else (row[0], row[1])

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


#: The customer flags as SQL (``customers.service.contact_block_of_number``, ``…_of_customer``): each takes a column
#: of the leads (the phone, the customer id) and the tenant's bound parameter and gives the reason or NULL.
BlockSQL = Callable[[ColumnElement[Any], BindParameter[int]], ColumnElement[str | None]]
Blocks = tuple[BlockSQL, BlockSQL]


@lru_cache(maxsize=8)
def _next_due_statement(
    lock: bool, by_line: bool, number_block: BlockSQL, customer_block: BlockSQL
) -> Select[Lead, str | None]:
    """The next due lead and why it may not be called, one statement built once (the reservation runs it for every
    lead an agent takes; built per call, its expressions cost more Python than the query costs the server).
    Parameters: ``tenant_id``, ``campaign_id``, ``agent``, ``now`` and (``by_line``) ``product_line``.

    The order (ADR 0022): callbacks due (this agent's personal ones first, then those anyone may take), tries due
    again by due time, interrupted tries (``in_progress`` freed with no next time: a released reservation) by id —
    one query (``due``) over those three, where only due rows match, so its sort is small — and, only when none of
    them is left, the never-tried leads by id (``fresh``), straight from the index on (campaign_id, status,
    next_call_at, id). (One ORDER BY of CASE expressions over every workable lead sorted the whole list at each
    reservation, at 100,000 leads an external sort to disk; ``ORDER BY id`` over both statuses walked the primary
    key past every lead already tried: docs/benchmarks.md, issue 17.) ``lock``: each ``FOR UPDATE SKIP LOCKED``,
    and the lead read again under its lock (``FOR UPDATE OF leads``), so that it is the row's newest version.

    The reason, in ``campaigns.service.scrub``'s order and then the lead's own customer's: the flags of the number's
    owner (``do_not_contact``, ``outbound_excluded``), a refusal in force that blocks the campaign (company-wide,
    or of its product line when ``by_line``: ``refused``), the DNC list (``dnc``), the flags of ``customer_id``."""
    tenant: BindParameter[int] = bindparam("tenant_id")
    now: BindParameter[datetime] = bindparam("now")
    agent: BindParameter[str] = bindparam("agent")
    base = (
        Lead.tenant_id == tenant,
        Lead.campaign_id == bindparam("campaign_id"),
        Lead.reserved_by.is_(None),
        or_(Lead.callback_agent.is_(None), Lead.callback_agent == agent),
    )
    callback, untimed = Lead.status == "callback", Lead.next_call_at.is_(None)
    tries = Lead.status.in_([s for s in WORKABLE if s != "callback"])
    due_now = or_(
        and_(callback, untimed),  # callbacks due (as two conditions: each an index range, none an OR inside one)
        and_(callback, Lead.next_call_at <= now),
        and_(tries, Lead.next_call_at <= now),  # tries due again
        and_(Lead.status == "in_progress", untimed),  # interrupted tries
    )
    step = case((and_(callback, Lead.callback_agent == agent), 0), (callback, 1), (untimed, 3), else_=2)
    due = select(Lead.id).where(*base, due_now).order_by(step, untimed, Lead.next_call_at, Lead.id).limit(1)
    if lock:
        due = due.with_for_update(skip_locked=True)
    due_cte = due.cte("due")
    fresh = (
        select(Lead.id)
        .where(*base, Lead.status == "new", untimed, ~select(due_cte.c.id).exists())
        .order_by(Lead.next_call_at, Lead.id)
        .limit(1)
    )
    if lock:
        fresh = fresh.with_for_update(skip_locked=True)
    fresh_cte = fresh.cte("fresh")
    line: BindParameter[str] | None = bindparam("product_line") if by_line else None
    refused = (
        select(literal("refused"))
        .where(Refusal.tenant_id == tenant, Refusal.e164 == Lead.phone, Refusal.lifted_at.is_(None), _blocks(line))
        .limit(1)
        .scalar_subquery()
    )
    dnc = (
        select(literal("dnc"))
        .where(DncNumber.tenant_id == tenant, DncNumber.e164 == Lead.phone)
        .limit(1)
        .scalar_subquery()
    )
    leads = Lead.__table__.c
    block = func.coalesce(number_block(leads.phone, tenant), refused, dnc, customer_block(leads.customer_id, tenant))
    picked = select(due_cte.c.id).union_all(select(fresh_cte.c.id))
    stmt = select(Lead, block.label("block")).where(Lead.id.in_(picked), Lead.tenant_id == tenant)
    return stmt.with_for_update(of=Lead) if lock else stmt


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


def _blocks(product_line: str | BindParameter[str] | None) -> ColumnElement[bool]:
    """A refusal that blocks a campaign of ``product_line``: company-wide, or of the same line."""
    if product_line is None:
        return Refusal.scope == "company"
    return or_(Refusal.scope == "company", and_(Refusal.scope == "product_line", Refusal.product_line == product_line))


def tenants_with_reservations_before(session: Session, before: datetime) -> list[int]:
    """The tenants holding a lead reserved before ``before`` — crosses tenants on purpose: the periodic job that
    frees stale reservations (``compliance.release_stale_everywhere``) then works each tenant on its own."""
    stmt = select(Lead.tenant_id).where(Lead.reserved_by.is_not(None), Lead.reserved_at < before).distinct()
    return sorted(session.scalars(stmt))
