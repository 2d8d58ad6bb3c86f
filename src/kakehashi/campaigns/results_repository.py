"""The queries behind a campaign's results (tenant-scoped): sums over ``lead_attempts`` and counts of ``leads``,
grouped in the database (one statement per figure set, whatever the number of attempts).

Hours and days are Japan time. Japan has no daylight saving and its offset is a whole number of hours, so an
attempt's Japan hour and day are integer arithmetic on its UTC epoch — ``(epoch + 9 h) // 1 h % 24`` and
``(epoch + 9 h) // 1 day`` —, one expression that PostgreSQL and SQLite both group by (``epoch_whole_seconds``
below is the one dialect-specific piece, as in ``analytics.repository``, which a domain may not import).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Integer,
    Select,
    and_,
    case,
    cast,
    distinct,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from kakehashi.campaigns.models import Campaign, CampaignList, Lead, LeadAttempt, Segment
from kakehashi.kit.repository import SelectT, TenantRepository

#: Lead states still to be worked (the rest — done, unworkable, excluded — are final).
REMAINING = ("new", "in_progress", "callback")
FINAL = ("done", "unworkable", "excluded")
#: Japan's offset from UTC in seconds (no daylight saving).
JST_OFFSET_S = 9 * 3600
GROUPINGS = ("total", "list", "segment", "agent", "hour", "day")


class epoch_whole_seconds(FunctionElement[int]):  # noqa: N801 - a SQL function reads as one
    """Whole seconds since 1970-01-01 UTC of a stored UTC timestamp."""

    type = BigInteger()
    inherit_cache = True


@compiles(epoch_whole_seconds)
def _whole_pg(element: epoch_whole_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})) AS BIGINT)"


@compiles(epoch_whole_seconds, "sqlite")
def _whole_sqlite(element: epoch_whole_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UTC timestamps as text ("YYYY-MM-DD HH:MM:SS.ffffff"); strftime('%s') reads them.
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


def _number(n: int) -> ColumnElement[int]:
    # Our own constants written into the SQL, so the same expression is selected and grouped by.
    return literal_column(str(int(n)), Integer)


def jst_hour_number(column: Any) -> ColumnElement[int]:
    """Hours since the epoch on Japan's clock (one number per Japan hour)."""
    return (epoch_whole_seconds(column) + _number(JST_OFFSET_S)) // _number(3600)


def jst_hour_of_day(column: Any) -> ColumnElement[int]:
    """0–23, the hour of the day in Japan."""
    return jst_hour_number(column) % _number(24)


def jst_day_number(column: Any) -> ColumnElement[int]:
    """Days since 1970-01-01 on Japan's clock."""
    return (epoch_whole_seconds(column) + _number(JST_OFFSET_S)) // _number(86400)


A = LeadAttempt
#: A dial: the line was tried (a result is written and it is not an agent's skip).
IS_DIAL = and_(A.result.is_not(None), A.result != "skipped")
#: A connect: a person was reached — the result code says so, or the line answered and no code is in yet.
IS_CONNECT = and_(IS_DIAL, or_(A.human, and_(A.result == "answered", A.disposition.is_(None))))


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _seconds(column: Any) -> ColumnElement[float]:
    # As float: the result's type is a number of seconds, never a Decimal the caller must convert.
    return cast(func.coalesce(func.sum(case((IS_DIAL, column), else_=0)), 0), Float)


#: The figures every result row sums, by name (``results.py`` turns them into rates).
FIGURES: dict[str, ColumnElement[Any]] = {
    "dials": _count_if(IS_DIAL),
    "connects": _count_if(IS_CONNECT),
    "contacts": _count_if(and_(IS_DIAL, A.contact)),
    "successes": _count_if(and_(IS_DIAL, A.success)),
    "refusals": _count_if(and_(IS_DIAL, A.refusal)),
    "abandoned": _count_if(A.result == "abandoned"),
    "answered": _count_if(A.result == "answered"),
    "leads_dialled": func.count(distinct(case((IS_DIAL, A.lead_id)))),
    "talk_s": _seconds(A.talk_seconds),
    "wrap_s": _seconds(A.wrap_seconds),
}


class ResultsRepository(TenantRepository):
    """Grouped sums over a tenant's attempts and leads."""

    def campaigns(self, campaign_ids: Sequence[int] | None = None) -> list[Campaign]:
        stmt = select(Campaign).order_by(Campaign.id)
        if campaign_ids is not None:
            stmt = stmt.where(Campaign.id.in_(campaign_ids))
        return list(self.session.scalars(self.scoped(stmt, Campaign)))

    def _window(
        self, stmt: SelectT, campaign_ids: Sequence[int], since: datetime | None, until: datetime | None
    ) -> SelectT:
        stmt = self.scoped(stmt.where(A.campaign_id.in_(campaign_ids)), A)
        if since is not None:
            stmt = stmt.where(A.started_at >= since)
        if until is not None:
            stmt = stmt.where(A.started_at < until)
        return stmt

    def figures(
        self,
        campaign_ids: Sequence[int],
        by: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """One dict per (campaign, group): ``campaign_id``, ``key`` and every figure of :data:`FIGURES`.
        ``key``: None for ``total``; the list id, the segment id, the agent's name (None: no agent), the Japan
        hour of day (0–23) or the Japan day number (days since 1970-01-01) — grouped in the database."""
        key: Any  # a column or an expression
        stmt: Select[Any]
        if by == "total":
            key = None
        elif by == "list":
            key = A.list_id
        elif by == "segment":
            key = CampaignList.segment_id
        elif by == "agent":
            key = A.agent
        elif by == "hour":
            key = jst_hour_of_day(A.started_at)
        elif by == "day":
            key = jst_day_number(A.started_at)
        else:
            raise ValueError(f"unknown grouping {by!r}")
        columns = [A.campaign_id, *([key.label("key")] if key is not None else []), *FIGURES.values()]
        stmt = select(*columns)
        if by == "segment":
            # The list's tenant is the attempt's (a list id of another tenant never matches: scoped below).
            stmt = stmt.select_from(A).outerjoin(
                CampaignList, and_(CampaignList.id == A.list_id, CampaignList.tenant_id == self.tenant_id)
            )
        stmt = self._window(stmt, campaign_ids, since, until)
        stmt = stmt.group_by(A.campaign_id, *([key] if key is not None else []))
        names = ["campaign_id", *(["key"] if key is not None else []), *FIGURES]
        rows = [dict(zip(names, row, strict=True)) for row in self.session.execute(stmt)]
        if key is None:
            for row in rows:
                row["key"] = None
        return rows

    def lead_counts(self, campaign_ids: Sequence[int], by: str) -> list[dict[str, Any]]:
        """Leads and remaining leads per (campaign, key) for ``total``, ``list`` and ``segment`` (now: the leads'
        state has no history)."""
        key: Any = {"total": None, "list": Lead.list_id, "segment": CampaignList.segment_id}[by]
        remaining = _count_if(Lead.status.in_(REMAINING))
        stmt = select(Lead.campaign_id, *([key.label("key")] if key is not None else []), func.count(), remaining)
        if by == "segment":
            stmt = stmt.select_from(Lead).outerjoin(
                CampaignList, and_(CampaignList.id == Lead.list_id, CampaignList.tenant_id == self.tenant_id)
            )
        stmt = self.scoped(stmt.where(Lead.campaign_id.in_(campaign_ids)), Lead)
        stmt = stmt.group_by(Lead.campaign_id, *([key] if key is not None else []))
        out = []
        for row in self.session.execute(stmt):
            values = tuple(row)
            if key is None:
                out.append({"campaign_id": values[0], "key": None, "leads": values[1], "remaining": values[2]})
            else:
                out.append({"campaign_id": values[0], "key": values[1], "leads": values[2], "remaining": values[3]})
        return out

    def list_names(self, campaign_id: int) -> dict[int, str]:
        stmt = select(CampaignList.id, CampaignList.name).where(CampaignList.campaign_id == campaign_id)
        return {i: n for i, n in self.session.execute(self.scoped(stmt, CampaignList))}

    def segment_names(self, campaign_id: int) -> dict[int, str]:
        """The segments that made a list of the campaign (or feed it)."""
        of_lists = select(CampaignList.segment_id).where(
            CampaignList.campaign_id == campaign_id, CampaignList.segment_id.is_not(None)
        )
        stmt = select(Segment.id, Segment.name).where(
            or_(Segment.id.in_(self.scoped(of_lists, CampaignList)), Segment.campaign_id == campaign_id)
        )
        return {i: n for i, n in self.session.execute(self.scoped(stmt, Segment))}

    def agents_in_order(self, campaign_id: int) -> list[str]:
        """The campaign's agents in the order they first tried a lead (then by name): the order stays as new
        agents join, so the masked names built on it (``OP-01``…) keep meaning the same person."""
        first = func.min(A.started_at)
        stmt = select(A.agent).where(A.campaign_id == campaign_id, A.agent.is_not(None))
        stmt = self.scoped(stmt, A).group_by(A.agent).order_by(first, A.agent)
        return [name for name in self.session.scalars(stmt) if name is not None]

    def successes(self, campaign_ids: Sequence[int]) -> dict[int, int]:
        """Successes over each campaign's whole life (its goal counts them all)."""
        stmt = select(A.campaign_id, FIGURES["successes"]).group_by(A.campaign_id)
        return {c: int(n) for c, n in self.session.execute(self._window(stmt, campaign_ids, None, None))}

    def work_done(self, campaign_ids: Sequence[int], since: datetime) -> dict[int, tuple[int, int]]:
        """Per campaign since ``since``: the Japan hours with at least one dial, and the Japan days."""
        stmt = select(
            A.campaign_id,
            func.count(distinct(jst_hour_number(A.started_at))),
            func.count(distinct(jst_day_number(A.started_at))),
        ).where(IS_DIAL)
        stmt = self._window(stmt, campaign_ids, since, None).group_by(A.campaign_id)
        return {c: (int(h), int(d)) for c, h, d in self.session.execute(stmt)}

    def leads_completed(self, campaign_ids: Sequence[int], since: datetime) -> dict[int, int]:
        """Per campaign: leads in a final state with an attempt started at ``since`` or later — those whose last
        attempt is that recent (a lead's state has no time of its own; its last try is when it was settled). Only
        the window's attempts are read (the index on campaign and start)."""
        recent = select(A.lead_id).where(A.started_at >= since).distinct()
        recent_sub = self.scoped(recent.where(A.campaign_id.in_(campaign_ids)), A).subquery()
        # A join on the window's distinct leads, not ``IN``: without statistics (a campaign just loaded) PostgreSQL
        # turned the ``IN`` into a semi-join that re-read the window for every settled lead (18 s for 100k attempts).
        stmt = (
            select(Lead.campaign_id, func.count())
            .join(recent_sub, recent_sub.c.lead_id == Lead.id)
            .where(Lead.status.in_(FINAL), Lead.campaign_id.in_(campaign_ids))
            .group_by(Lead.campaign_id)
        )
        return {c: int(n) for c, n in self.session.execute(self.scoped(stmt, Lead))}


def day_of_number(day_number: int) -> str:
    """The ISO date of a Japan day number (:func:`jst_day_number`)."""
    return datetime.fromtimestamp(int(day_number) * 86400, UTC).date().isoformat()
