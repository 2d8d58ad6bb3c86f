"""Contact history: one timeline entry per interaction, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from kakehashi.audit import service as audit
from kakehashi.contacts.models import Contact
from kakehashi.contacts.repository import ContactRepository
from kakehashi.contacts.schemas import ContactCreate
from kakehashi.customers import service as customers
from kakehashi.kit.context import Actor
from kakehashi.kit.db import utcnow
from kakehashi.kit.events import Event, publish_on_commit

SCREENPOP_CONTACTS = 10


def add_contact(session: Session, actor: Actor, customer_id: int, data: ContactCreate) -> Contact:
    customers.require_customer(session, actor, customer_id)
    contact = Contact(
        customer_id=customer_id,
        channel=data.channel.value,
        direction=data.direction,
        occurred_at=data.occurred_at or utcnow(),
        summary=data.summary.strip(),
        body=data.body,
        agent=data.agent or (actor.username if actor.username != "system" else None),
    )
    ContactRepository(session, actor.tenant_id).add(contact)
    audit.record(session, actor, "create", resource="contact", resource_id=contact.id, customer_id=customer_id)
    publish_on_commit(
        session, Event("contact.created", actor.tenant_id, {"contact_id": contact.id, "customer_id": customer_id})
    )
    return contact


def record_call(
    session: Session, tenant_id: int, customer_id: int, *, call_id: int, direction: str, occurred_at: datetime,
    agent: str | None, summary: str, recording: bool, body: str | None = None,
) -> Contact:  # fmt: skip
    """A finished call on the customer's timeline (written with its CDR, in the same transaction); ``ref``
    points at the call, whose recording allowed roles can play (``GET /api/v1/calls/{id}/recording``)."""
    contact = Contact(customer_id=customer_id, channel="call", direction=direction, occurred_at=occurred_at,
                      summary=summary[:200], body=body, agent=agent,
                      ref={"call_id": call_id, "recording": recording})  # fmt: skip
    ContactRepository(session, tenant_id).add(contact)
    publish_on_commit(
        session, Event("contact.created", tenant_id, {"contact_id": contact.id, "customer_id": customer_id})
    )
    return contact


def recent_rows(
    session: Session, actor: Actor, customer_id: int, limit: int = SCREENPOP_CONTACTS
) -> list[dict[str, Any]]:
    """The newest contacts as plain dicts (the screen pop's read path)."""
    return ContactRepository(session, actor.tenant_id).recent_rows(customer_id, limit)


def all_for_customer(session: Session, actor: Actor, customer_id: int) -> list[Contact]:
    """Every contact of the customer, oldest first. Not audited: the caller (a disclosure) audits its export."""
    return ContactRepository(session, actor.tenant_id).all_for_customer(customer_id)


def timeline(session: Session, actor: Actor, customer_id: int, limit: int = 50, offset: int = 0) -> list[Contact]:
    customers.require_customer(session, actor, customer_id)
    audit.record_customer_reads(session, actor, [customer_id], resource="contacts")
    return ContactRepository(session, actor.tenant_id).timeline(customer_id, limit, offset)
