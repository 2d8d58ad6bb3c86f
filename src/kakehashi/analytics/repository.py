"""The reporting read model: read-only aggregate queries over the tables of calls, agents and routing.

Why this module reads other domains' tables (against the rule "domains call each other's services"):
metrics are sums and counts over many rows of several domains at once — CDRs, live calls, agent state spans,
queues and their members. Through the owners' services that would mean loading every row into Python (or
adding a reporting method to each domain that only this one uses). Here the database counts, with the
indexes the owners already keep, and nothing is ever written. ADR 0011 records the decision and its limits:
the queries depend on the other domains' columns, so a change of those columns must update this module
(tests/test_metrics.py builds the rows it reads through the owners' models and fails when they drift).

Every query is scoped to the tenant (``TenantRepository``).
"""

from __future__ import annotations

from collections.abc import Collection
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
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from kakehashi.agents.models import Agent, AgentSkill, AgentStateSpan
from kakehashi.analytics.definitions import (
    ABANDONED_STATES,
    DEFAULT_THRESHOLD_S,
    DEFLECTED_STATES,
    WAITING_CALL_STATES,
    WITHIN_TOLERANCE_S,
    CallTotals,
)
from kakehashi.calls.models import Call, Cdr
from kakehashi.kit.repository import TenantRepository
from kakehashi.routing.models import Queue, QueueMember

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: One span of an agent's state: (agent id, state, started at, ended at or None while it lasts).
Span = tuple[int, str, datetime, datetime | None]


class epoch_seconds(FunctionElement[float]):  # noqa: N801 - SQL function names are lower case
    """Seconds since 1970-01-01 UTC of a UTC timestamp column, with fractions (for sums of durations)."""

    type = Float()
    inherit_cache = True


class epoch_whole_seconds(FunctionElement[int]):  # noqa: N801
    """Whole seconds since 1970-01-01 UTC, exact (for interval buckets: no float rounding at a boundary)."""

    type = BigInteger()
    inherit_cache = True


@compiles(epoch_seconds)
def _epoch_pg(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS DOUBLE PRECISION)"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UTC timestamps as text; julianday() reads them to the millisecond.
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


@compiles(epoch_whole_seconds)
def _whole_pg(element: epoch_whole_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})) AS BIGINT)"


@compiles(epoch_whole_seconds, "sqlite")
def _whole_sqlite(element: epoch_whole_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


def epoch_of(at: datetime) -> float:
    return (at - _EPOCH).total_seconds()


def bucket_of(column: Any, size_s: int, offset_s: int) -> ColumnElement[int]:
    """The interval number of a timestamp: ``(epoch + offset) // size`` in whole seconds. The numbers are
    written into the SQL (they are ours, not the caller's) so the same expression can be grouped by."""
    size = literal_column(str(int(size_s)), Integer)
    offset = literal_column(str(int(offset_s)), Integer)
    return (epoch_whole_seconds(column) + offset) // size


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _sum_if(condition: ColumnElement[bool], value: Any) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


def call_totals_columns(threshold_s: ColumnElement[Any]) -> list[ColumnElement[Any]]:
    """The aggregate columns behind :class:`~kakehashi.analytics.definitions.CallTotals`, over ``cdrs``.

    The categories follow ``definitions``: deflected (final state voicemail/callback) first, then answered
    (``answered_at`` set), then abandoned (final state abandoned, never answered)."""
    wait = Cdr.queue_seconds + Cdr.ring_seconds
    deflected = Cdr.final_state.in_(sorted(DEFLECTED_STATES))
    answered = and_(Cdr.answered_at.is_not(None), not_(deflected))
    abandoned = and_(Cdr.final_state.in_(sorted(ABANDONED_STATES)), Cdr.answered_at.is_(None))
    in_time = wait <= threshold_s + literal_column(repr(WITHIN_TOLERANCE_S))
    return [
        func.count(Cdr.id).label("offered"),
        _count_if(answered).label("answered"),
        _count_if(and_(answered, in_time)).label("answered_within"),
        _count_if(abandoned).label("abandoned"),
        _count_if(and_(abandoned, in_time)).label("abandoned_within"),
        _count_if(deflected).label("deflected"),
        _sum_if(answered, wait).label("answer_wait_s"),
        _sum_if(answered, Cdr.talk_seconds).label("talk_s"),
        _sum_if(answered, Cdr.hold_seconds).label("hold_s"),
        _sum_if(answered, Cdr.wrap_up_seconds).label("wrap_up_s"),
    ]


class ReportingRepository(TenantRepository):
    # -- queues and their members ------------------------------------------------------------------------

    def queue(self, queue_id: int) -> Queue | None:
        return self.session.scalars(self.scoped(select(Queue).where(Queue.id == queue_id), Queue)).one_or_none()

    def queue_named(self, name: str) -> Queue | None:
        return self.session.scalars(self.scoped(select(Queue).where(Queue.name == name), Queue)).one_or_none()

    def queues(self, name: str | None = None) -> list[Queue]:
        stmt = self.scoped(select(Queue), Queue).order_by(Queue.name)
        if name is not None:
            stmt = stmt.where(Queue.name == name)
        return list(self.session.scalars(stmt))

    def member_ids(self, queue: Queue) -> Select[Any]:
        """The agents of a queue: those with its skill when it has one, else its ``queue_members``."""
        if queue.skill:
            stmt = select(AgentSkill.agent_id).where(AgentSkill.skill == queue.skill)
        else:
            stmt = select(QueueMember.agent_id).where(QueueMember.queue_id == queue.id)
        return stmt

    def members_by_queue(self, name: str | None = None) -> dict[str, set[int]]:
        """Agent ids per queue name, for every queue of the tenant (or the one named)."""
        explicit = (
            select(Queue.name, QueueMember.agent_id)
            .join(QueueMember, QueueMember.queue_id == Queue.id)
            .where(or_(Queue.skill.is_(None), Queue.skill == ""))
        )
        by_skill = select(Queue.name, AgentSkill.agent_id).join(AgentSkill, AgentSkill.skill == Queue.skill)
        members: dict[str, set[int]] = {}
        for stmt in (explicit, by_skill):
            stmt = stmt.join(Agent, Agent.id == stmt.selected_columns[1]).where(
                Queue.tenant_id == self.tenant_id, Agent.tenant_id == self.tenant_id
            )
            if name is not None:
                stmt = stmt.where(Queue.name == name)
            for queue_name, agent_id in self.session.execute(stmt):
                members.setdefault(queue_name, set()).add(agent_id)
        return members

    def memberships(self) -> list[tuple[str, int, int, bool]]:
        """(queue name, agent id, level, by skill) for every queue of the tenant, members counted as
        :meth:`member_ids` does: the listed members of a queue without a skill, every agent with the skill of a
        queue with one (at their skill level)."""
        listed = (
            select(Queue.name, QueueMember.agent_id, QueueMember.level)
            .join(QueueMember, QueueMember.queue_id == Queue.id)
            .where(or_(Queue.skill.is_(None), Queue.skill == ""))
        )
        by_skill = select(Queue.name, AgentSkill.agent_id, AgentSkill.level).join(
            AgentSkill, AgentSkill.skill == Queue.skill
        )
        found: list[tuple[str, int, int, bool]] = []
        for skilled, stmt in ((False, listed), (True, by_skill)):
            stmt = stmt.join(Agent, Agent.id == stmt.selected_columns[1]).where(
                Queue.tenant_id == self.tenant_id, Agent.tenant_id == self.tenant_id
            )
            found += [(name, agent_id, int(level), skilled) for name, agent_id, level in self.session.execute(stmt)]
        return found

    def agents_by_state(self, member_ids: Select[Any]) -> dict[str, int]:
        stmt = self.scoped(
            select(Agent.state, func.count(Agent.id)).where(Agent.id.in_(member_ids)).group_by(Agent.state), Agent
        )
        return {state: int(count) for state, count in self.session.execute(stmt)}

    def agents(self, name: str | None = None) -> list[tuple[int, str, str]]:
        """(id, name, display name) of the tenant's agents (or the one named)."""
        stmt = self.scoped(select(Agent.id, Agent.name, Agent.display_name), Agent).order_by(Agent.name)
        if name is not None:
            stmt = stmt.where(Agent.name == name)
        return [(row[0], row[1], row[2]) for row in self.session.execute(stmt)]

    # -- live calls ----------------------------------------------------------------------------------------

    def waiting(self, queue_name: str) -> tuple[int, datetime | None]:
        """Callers waiting in the queue now, and since when the longest-waiting one entered it
        (``ix_calls_tenant_state``)."""
        entered = func.coalesce(Call.queued_at, Call.offered_at)
        stmt = self.scoped(
            select(func.count(Call.id), func.min(entered)).where(
                Call.state.in_(WAITING_CALL_STATES), Call.queue == queue_name
            ),
            Call,
        )
        count, oldest = self.session.execute(stmt).one()
        return int(count or 0), oldest

    def waiting_by_queue(self) -> dict[str, tuple[int, datetime | None]]:
        """:meth:`waiting` for every queue at once: queue name → (callers waiting, since when the longest-waiting
        one is in the queue); queues nobody waits in are left out."""
        entered = func.coalesce(Call.queued_at, Call.offered_at)
        stmt = self.scoped(
            select(Call.queue, func.count(Call.id), func.min(entered))
            .where(Call.state.in_(WAITING_CALL_STATES), Call.queue.is_not(None))
            .group_by(Call.queue),
            Call,
        )
        return {str(name): (int(count or 0), oldest) for name, count, oldest in self.session.execute(stmt)}

    # -- CDR aggregates ------------------------------------------------------------------------------------

    def queue_totals(self, queue_name: str, threshold_s: int, since: datetime, until: datetime) -> CallTotals:
        """The queue's calls that started in [since, until) (``ix_cdrs_tenant_started_at``)."""
        columns = call_totals_columns(literal(int(threshold_s), Integer))
        stmt = self.scoped(
            select(*columns).where(Cdr.queue == queue_name, Cdr.started_at >= since, Cdr.started_at < until), Cdr
        )
        return CallTotals.of(self.session.execute(stmt).one()._mapping)

    def totals_by_queue(
        self, since: datetime, until: datetime, size_s: int, offset_s: int, queue: str | None = None
    ) -> dict[tuple[str, int], CallTotals]:
        """Per (queue name, interval number), each call against its own queue's threshold T."""
        threshold = func.coalesce(Queue.sl_threshold_s, DEFAULT_THRESHOLD_S)
        bucket = bucket_of(Cdr.started_at, size_s, offset_s)
        stmt = (
            select(Cdr.queue, bucket.label("bucket"), *call_totals_columns(threshold))
            .outerjoin(Queue, and_(Queue.tenant_id == Cdr.tenant_id, Queue.name == Cdr.queue))
            .where(Cdr.tenant_id == self.tenant_id, Cdr.started_at >= since, Cdr.started_at < until)
            .where(Cdr.queue.is_not(None) if queue is None else Cdr.queue == queue)
            .group_by(Cdr.queue, bucket)
        )
        return {(row.queue, int(row.bucket)): CallTotals.of(row._mapping) for row in self.session.execute(stmt)}

    def totals_per_queue(self, since: datetime, until: datetime) -> dict[str, CallTotals]:
        """:meth:`queue_totals` for every queue at once: per queue name, the calls that started in [since, until),
        each against its own queue's threshold T."""
        threshold = func.coalesce(Queue.sl_threshold_s, DEFAULT_THRESHOLD_S)
        stmt = (
            select(Cdr.queue, *call_totals_columns(threshold))
            .outerjoin(Queue, and_(Queue.tenant_id == Cdr.tenant_id, Queue.name == Cdr.queue))
            .where(Cdr.tenant_id == self.tenant_id, Cdr.started_at >= since, Cdr.started_at < until)
            .where(Cdr.queue.is_not(None))
            .group_by(Cdr.queue)
        )
        return {row.queue: CallTotals.of(row._mapping) for row in self.session.execute(stmt)}

    def totals_by_agent(
        self, since: datetime, until: datetime, size_s: int, offset_s: int, agent: str | None = None
    ) -> dict[tuple[str, int], CallTotals]:
        """Per (agent name, interval number): the calls each agent took or was offered last."""
        bucket = bucket_of(Cdr.started_at, size_s, offset_s)
        stmt = (
            select(Cdr.agent, bucket.label("bucket"), *call_totals_columns(literal(DEFAULT_THRESHOLD_S, Integer)))
            .where(Cdr.tenant_id == self.tenant_id, Cdr.started_at >= since, Cdr.started_at < until)
            .where(Cdr.agent.is_not(None) if agent is None else Cdr.agent == agent)
            .group_by(Cdr.agent, bucket)
        )
        return {(row.agent, int(row.bucket)): CallTotals.of(row._mapping) for row in self.session.execute(stmt)}

    # -- agent state spans ---------------------------------------------------------------------------------

    def _spans_in(
        self, since: datetime, until: datetime, agent_ids: Select[Any] | Collection[int] | None
    ) -> ColumnElement[bool]:
        """Spans overlapping [since, until): those that started inside (``ix_agent_state_spans_tenant_started``)
        plus, per agent of the tenant, the last one started before ``since`` if it lasted into the window. An
        agent is in one state at a time, so no earlier span can reach the window; that one is found through
        ``ix_agent_state_spans_agent_started`` without reading the agent's history."""
        span = AgentStateSpan
        before = aliased(AgentStateSpan)
        inside = select(span.id).where(
            span.tenant_id == self.tenant_id, span.started_at >= since, span.started_at < until
        )
        latest = (
            select(before.id)
            .where(before.agent_id == Agent.id, before.started_at < since)
            .order_by(before.started_at.desc(), before.id.desc())
            .limit(1)
            .correlate(Agent)
            .scalar_subquery()
        )
        carried = select(latest).where(Agent.tenant_id == self.tenant_id)
        if agent_ids is not None:
            inside = inside.where(span.agent_id.in_(agent_ids))
            carried = carried.where(Agent.id.in_(agent_ids))
        return and_(
            span.tenant_id == self.tenant_id,
            span.id.in_(union_all(inside, carried)),
            or_(span.ended_at.is_(None), span.ended_at > since),
        )

    def state_seconds(
        self, since: datetime, until: datetime, agent_ids: Select[Any] | Collection[int]
    ) -> dict[str, float]:
        """Seconds per state of the agents' spans, clipped to [since, until) (a span still open lasts until
        ``until``) — summed in the database."""
        span = AgentStateSpan
        lo_e, hi_e = literal(epoch_of(since), Float), literal(epoch_of(until), Float)
        start, end = epoch_seconds(span.started_at), epoch_seconds(span.ended_at)
        lo = case((start < lo_e, lo_e), else_=start)
        hi = case((span.ended_at.is_(None), hi_e), (end > hi_e, hi_e), else_=end)
        stmt = (
            select(span.state, func.sum(case((hi > lo, hi - lo), else_=0.0)))
            .where(self._spans_in(since, until, agent_ids))
            .group_by(span.state)
        )
        return {state: float(seconds or 0) for state, seconds in self.session.execute(stmt)}

    def spans(self, since: datetime, until: datetime, agent_ids: Collection[int] | None = None) -> list[Span]:
        """The spans overlapping [since, until), unclipped, oldest first (the service splits them by interval)."""
        span = AgentStateSpan
        stmt = (
            select(span.agent_id, span.state, span.started_at, span.ended_at)
            .where(self._spans_in(since, until, agent_ids))
            .order_by(span.agent_id, span.started_at, span.id)
        )
        return [(row[0], row[1], row[2], row[3]) for row in self.session.execute(stmt)]
