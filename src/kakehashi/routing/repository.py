"""Queries on numbers, queues, members and callbacks (tenant-scoped)."""

from __future__ import annotations

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from kakehashi.kit.repository import TenantRepository
from kakehashi.routing.models import Callback, InboundNumber, Queue, QueueMember, Voicemail


def number_by_e164(session: Session, e164: str) -> InboundNumber | None:
    """Which tenant a dialled number belongs to: not tenant-scoped, this is how the tenant is found."""
    return session.scalars(select(InboundNumber).where(InboundNumber.number_e164 == e164)).one_or_none()


OPEN = ("pending", "dialing")


def pending_callbacks(session: Session) -> list[Callback]:
    """Every tenant's callbacks still to be made, oldest place first (reloaded at start-up), detached."""
    stmt = select(Callback).where(Callback.status.in_(("pending", "dialing"))).order_by(Callback.place_at)
    found = list(session.scalars(stmt))
    for row in found:
        session.expunge(row)
    return found


class RoutingRepository(TenantRepository):
    def queues(self) -> list[Queue]:
        return list(self.session.scalars(self.scoped(select(Queue).order_by(Queue.name), Queue)))

    def queue(self, queue_id: int) -> Queue | None:
        return self.session.scalars(self.scoped(select(Queue).where(Queue.id == queue_id), Queue)).one_or_none()

    def queue_named(self, name: str) -> Queue | None:
        return self.session.scalars(self.scoped(select(Queue).where(Queue.name == name), Queue)).one_or_none()

    def members(self, queue_id: int) -> list[QueueMember]:
        return list(self.session.scalars(select(QueueMember).where(QueueMember.queue_id == queue_id)))

    def numbers(self) -> list[InboundNumber]:
        return list(self.session.scalars(self.scoped(select(InboundNumber).order_by(InboundNumber.number_e164),
                                                     InboundNumber)))  # fmt: skip

    def callback(self, origin_ref: str) -> Callback | None:
        stmt = self.scoped(select(Callback).where(Callback.origin_call_ref == origin_ref), Callback)
        return self.session.scalars(stmt).one_or_none()

    def pending_callbacks(self) -> list[Callback]:
        stmt = select(Callback).where(Callback.status.in_(("pending", "dialing")))
        return list(self.session.scalars(self.scoped(stmt, Callback).order_by(Callback.place_at)))

    def number(self, number_id: int) -> InboundNumber | None:
        stmt = select(InboundNumber).where(InboundNumber.id == number_id)
        return self.session.scalars(self.scoped(stmt, InboundNumber)).one_or_none()

    def callbacks(self, limit: int, status: str | None = None) -> list[Callback]:
        stmt = self.scoped(select(Callback), Callback)
        if status is not None:
            stmt = stmt.where(Callback.status == status)
        waiting_first = case((Callback.status.in_(OPEN), 0), else_=1)
        return list(self.session.scalars(stmt.order_by(waiting_first, Callback.place_at).limit(limit)))

    def voicemails(self, limit: int, status: str | None = None) -> list[Voicemail]:
        stmt = self.scoped(select(Voicemail), Voicemail)
        if status is not None:
            stmt = stmt.where(Voicemail.status == status)
        return list(self.session.scalars(stmt.order_by(Voicemail.left_at.desc()).limit(limit)))

    def voicemail(self, voicemail_id: int) -> Voicemail | None:
        stmt = select(Voicemail).where(Voicemail.id == voicemail_id)
        return self.session.scalars(self.scoped(stmt, Voicemail)).one_or_none()
