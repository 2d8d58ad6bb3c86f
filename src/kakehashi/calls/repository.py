"""Call queries. Driver events find calls by the driver's reference (a system path, not a user's);
everything a user asks for goes through :class:`CallRepository`, scoped to the tenant."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, not_, or_, select
from sqlalchemy.orm import Session

from kakehashi.calls.models import Call, CallTransition, Cdr
from kakehashi.calls.states import DEFLECTED, FINAL
from kakehashi.kit.repository import TenantRepository


def call_by_ref(session: Session, driver: str, ref: str) -> Call | None:
    """The call a driver event is about, locked for this transaction (events of one call apply in order)."""
    stmt = select(Call).where(Call.driver == driver, Call.ref == ref).with_for_update()
    return session.scalars(stmt).one_or_none()


def customer_and_caller_of(session: Session, driver: str, ref: str) -> tuple[int | None, str | None] | None:
    """(customer id, caller's E.164) of a stored call, read without loading or locking the row."""
    stmt = select(Call.customer_id, Call.ani_e164).where(Call.driver == driver, Call.ref == ref)
    row = session.execute(stmt).first()
    return None if row is None else (row.customer_id, row.ani_e164)


def last_agent_from(session: Session, tenant_id: int, e164: str) -> tuple[str, datetime] | None:
    """The last agent on a call from ``e164`` (``ix_cdrs_tenant_ani_e164``)."""
    stmt = (select(Cdr.agent, Cdr.ended_at)
            .where(Cdr.tenant_id == tenant_id, Cdr.ani_e164 == e164, Cdr.direction == "inbound",
                   Cdr.agent.is_not(None))
            .order_by(Cdr.ended_at.desc()).limit(1))  # fmt: skip
    row = session.execute(stmt).first()
    return (str(row[0]), row[1]) if row is not None else None


def last_agent_to(session: Session, tenant_id: int, e164: str) -> tuple[str, datetime] | None:
    """The last agent on a call to ``e164`` (a callback, a campaign's call; ``ix_cdrs_tenant_dnis``)."""
    stmt = (select(Cdr.agent, Cdr.ended_at)
            .where(Cdr.tenant_id == tenant_id, Cdr.dnis == e164, Cdr.direction == "outbound",
                   Cdr.agent.is_not(None))
            .order_by(Cdr.ended_at.desc()).limit(1))  # fmt: skip
    row = session.execute(stmt).first()
    return (str(row[0]), row[1]) if row is not None else None


def open_calls(session: Session, driver: str) -> list[Call]:
    """Calls of a driver that have not reached a final state (for recovery after a restart)."""
    over = and_(Call.state.in_([s.value for s in DEFLECTED]), Call.ended_at.is_not(None))
    stmt = select(Call).where(Call.driver == driver, Call.state.not_in([s.value for s in FINAL]), not_(over))
    return list(session.scalars(stmt))


class CallRepository(TenantRepository):
    def in_progress(self, agent: str | None = None) -> list[Call]:
        """Calls not over yet (a deflected caller still on the line counts), oldest first; with ``agent``
        only theirs (on the call, or consulted about it)."""
        over = and_(Call.state.in_([s.value for s in DEFLECTED]), Call.ended_at.is_not(None))
        stmt = select(Call).where(Call.state.not_in([s.value for s in FINAL]), not_(over))
        if agent is not None:
            stmt = stmt.where(or_(Call.agent == agent, Call.consult_agent == agent))
        return list(self.session.scalars(self.scoped(stmt.order_by(Call.offered_at, Call.id), Call)))

    def get(self, call_id: int) -> Call | None:
        return self.session.scalars(self.scoped(select(Call).where(Call.id == call_id), Call)).one_or_none()

    def cdr_of(self, call_id: int) -> Cdr | None:
        return self.session.scalars(self.scoped(select(Cdr).where(Cdr.call_id == call_id), Cdr)).one_or_none()

    def transitions(self, call_id: int) -> list[CallTransition]:
        stmt = select(CallTransition).where(CallTransition.call_id == call_id).order_by(CallTransition.id)
        return list(self.session.scalars(stmt))

    def _cdrs(self, since: datetime | None, until: datetime | None, agent: str | None) -> Select[Cdr]:
        stmt = self.scoped(select(Cdr), Cdr)
        if since is not None:
            stmt = stmt.where(Cdr.started_at >= since)
        if until is not None:
            stmt = stmt.where(Cdr.started_at < until)
        if agent:
            stmt = stmt.where(Cdr.agent == agent)
        return stmt

    def cdrs(
        self, since: datetime | None, until: datetime | None, agent: str | None, *, limit: int, offset: int
    ) -> tuple[list[Cdr], int]:
        stmt = self._cdrs(since, until, agent)
        total = self.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = self.session.scalars(stmt.order_by(Cdr.started_at, Cdr.id).limit(limit).offset(offset))
        return list(rows), total

    def stream_cdrs(self, since: datetime | None, until: datetime | None, agent: str | None) -> Iterator[Cdr]:
        stmt = self._cdrs(since, until, agent).order_by(Cdr.started_at, Cdr.id).execution_options(yield_per=2000)
        yield from self.session.scalars(stmt)

    def customer_ids_by_last_result(self, codes: Sequence[str]) -> Select[Any]:
        """Customers whose latest call with a result code (by offer time, then id) has one of ``codes``."""
        ranked = self.scoped(
            select(
                Call.customer_id,
                Call.disposition,
                func.row_number()
                .over(partition_by=Call.customer_id, order_by=(Call.offered_at.desc(), Call.id.desc()))
                .label("n"),
            ).where(Call.customer_id.is_not(None), Call.disposition.is_not(None)),
            Call,
        ).subquery()
        return select(ranked.c.customer_id).where(ranked.c.n == 1, ranked.c.disposition.in_(list(codes)))
