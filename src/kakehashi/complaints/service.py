"""Returns and complaints. A complaint raises the customer's caution flag and excludes them
from outbound lists; resolving it closes the case but keeps the exclusion (re-solicitation
after a complaint is a decision a supervisor makes on the customer, not a side effect)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from kakehashi.audit import service as audit
from kakehashi.complaints.models import Complaint
from kakehashi.complaints.repository import ComplaintRepository
from kakehashi.complaints.schemas import ComplaintCreate, Kind
from kakehashi.customers import service as customers
from kakehashi.kit.clock import business_today
from kakehashi.kit.context import Actor
from kakehashi.kit.db import utcnow
from kakehashi.kit.errors import Conflict, NotFound, ValidationFailed, field_error
from kakehashi.kit.events import Event, publish_on_commit
from kakehashi.orders import service as orders

SCREENPOP_OPEN_LIMIT = 50


def caution_reason(category: str) -> str:
    """The reason a complaint writes on the customer's caution flag and outbound exclusion."""
    return f"クレーム: {category}"


def record_complaint(session: Session, actor: Actor, customer_id: int, data: ComplaintCreate) -> Complaint:
    """Store a return or complaint; a complaint sets caution + outbound exclusion on the customer."""
    customers.require_customer(session, actor, customer_id)
    if data.order_id is not None and not orders.order_belongs_to(session, actor, data.order_id, customer_id):
        raise ValidationFailed("order not found", errors=[field_error("order_id", "not an order of this customer")])
    complaint = Complaint(
        customer_id=customer_id,
        order_id=data.order_id,
        kind=data.kind.value,
        occurred_on=data.occurred_on or business_today(),
        category=data.category.strip(),
        text=data.text.strip(),
        severity=data.severity.value,
        status="open",
    )
    ComplaintRepository(session, actor.tenant_id).add(complaint)
    audit.record(session, actor, "create", resource=complaint.kind, resource_id=complaint.id, customer_id=customer_id)
    if data.kind is Kind.complaint:
        customers.mark_caution(session, actor, customer_id, caution_reason(complaint.category))
    publish_on_commit(
        session,
        Event(
            f"{complaint.kind}.created",
            actor.tenant_id,
            {"complaint_id": complaint.id, "customer_id": customer_id, "kind": complaint.kind},
        ),
    )
    return complaint


def resolve(session: Session, actor: Actor, complaint_id: int) -> Complaint:
    complaint = ComplaintRepository(session, actor.tenant_id).get(complaint_id)
    if complaint is None:
        raise NotFound(f"complaint {complaint_id} not found")
    if complaint.status != "open":
        raise Conflict(f"complaint {complaint_id} is already {complaint.status}")
    complaint.status = "resolved"
    complaint.resolved_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "update",
        resource=complaint.kind,
        resource_id=complaint.id,
        customer_id=complaint.customer_id,
        detail={"status": "resolved"},
    )
    return complaint


def open_rows(session: Session, actor: Actor, customer_id: int) -> list[dict[str, Any]]:
    """Open returns and complaints as plain dicts (the screen pop's read path)."""
    return ComplaintRepository(session, actor.tenant_id).open_rows(customer_id, SCREENPOP_OPEN_LIMIT)


def open_for_customer(session: Session, actor: Actor, customer_id: int) -> list[Complaint]:
    return ComplaintRepository(session, actor.tenant_id).for_customer(
        customer_id, open_only=True, limit=SCREENPOP_OPEN_LIMIT
    )


def all_for_customer(session: Session, actor: Actor, customer_id: int) -> list[Complaint]:
    """Every case of the customer, oldest first. Not audited: the caller (a disclosure) audits its export."""
    return ComplaintRepository(session, actor.tenant_id).all_for_customer(customer_id)


def history(session: Session, actor: Actor, customer_id: int) -> list[Complaint]:
    customers.require_customer(session, actor, customer_id)
    audit.record_customer_reads(session, actor, [customer_id], resource="complaints")
    return ComplaintRepository(session, actor.tenant_id).for_customer(customer_id)


def customer_ids_with_complaints(
    session: Session,
    actor: Actor,
    *,
    kinds: Sequence[str] = ("complaint",),
    since: date | None = None,
    open_only: bool = False,
) -> Select[Any]:
    """A statement of the ids of customers with a case of these kinds (occurred on or after the Japanese date
    ``since``; only open ones) — complaint history for campaigns.segments. Not run here."""
    return ComplaintRepository(session, actor.tenant_id).customer_ids_with(kinds, since=since, open_only=open_only)
