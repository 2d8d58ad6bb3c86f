"""Call queries. Driver events find calls by the driver's reference (a system path, not a user's);
everything a user asks for goes through :class:`CallRepository`, scoped to the tenant."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kakehashi.calls.models import Call, Cdr
from kakehashi.kit.repository import TenantRepository


def call_by_ref(session: Session, driver: str, ref: str) -> Call | None:
    """The call a driver event is about, locked for this transaction (events of one call apply in order)."""
    stmt = select(Call).where(Call.driver == driver, Call.ref == ref).with_for_update()
    return session.scalars(stmt).one_or_none()


def open_calls(session: Session, driver: str) -> list[Call]:
    """Calls of a driver that have not reached a final state (for recovery after a restart)."""
    from kakehashi.calls.states import FINAL

    stmt = select(Call).where(Call.driver == driver, Call.state.not_in([s.value for s in FINAL]))
    return list(session.scalars(stmt))


class CallRepository(TenantRepository):
    def get(self, call_id: int) -> Call | None:
        return self.session.scalars(self.scoped(select(Call).where(Call.id == call_id), Call)).one_or_none()

    def cdr_of(self, call_id: int) -> Cdr | None:
        return self.session.scalars(self.scoped(select(Cdr).where(Cdr.call_id == call_id), Cdr)).one_or_none()
