"""APPI duties (個人情報保護法): list sources, suspension of use, disclosure. No HTTP; services flush only.

Customer data is gathered through the owning domains' services, never from their tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from kakehashi.audit import service as audit
from kakehashi.complaints import service as complaints
from kakehashi.complaints.schemas import ComplaintOut
from kakehashi.contacts import service as contacts
from kakehashi.contacts.schemas import ContactOut
from kakehashi.customers import service as customers
from kakehashi.customers.schemas import CustomerOut
from kakehashi.kit.clock import business_today
from kakehashi.kit.context import Actor
from kakehashi.kit.db import utcnow
from kakehashi.kit.errors import NotFound, ValidationFailed, field_error
from kakehashi.kit.text import clean
from kakehashi.orders import service as orders
from kakehashi.orders.schemas import OrderOut
from kakehashi.privacy.models import DataSource, PrivacyRequest
from kakehashi.privacy.repository import PrivacyRequestRepository, SourceRepository
from kakehashi.privacy.schemas import (
    AccessEntry,
    Channel,
    DisclosedField,
    DisclosedSource,
    Disclosure,
    PrivacyRequestOut,
    RequestKind,
    SourceCreate,
    SuspensionCreate,
)

#: APPI (法第30条 and its Enforcement Rules): records of data received from a third party are kept 3 years
#: in the general case (1 year in narrow cases, which a caller can give as an explicit ``retain_until``).
RETENTION_YEARS = 3
SUSPENSION_REASON = "利用停止請求"


def add_years(day: date, years: int) -> date:
    """``day`` moved ``years`` ahead; 29 February becomes 1 March, so a retention is never a day short."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


# --- list sources (第三者提供に係る記録) -------------------------------------------------------------


def record_source(session: Session, actor: Actor, data: SourceCreate, *, today: date | None = None) -> DataSource:
    """Validate and store a third-party provision record; every problem is reported per field."""
    today = today or business_today()
    errors: list[dict[str, Any]] = []
    provider = clean(data.provider_name)
    if not provider:
        errors.append(field_error("provider_name", "the provider's name is required"))
    method = (data.acquisition_method or "").strip()
    if not method:
        errors.append(field_error("acquisition_method", "say how the provider obtained the data"))
    if data.received_on > today:
        errors.append(field_error("received_on", "the date received cannot be in the future"))
    items = [clean(i) for i in data.items]
    if not items:
        errors.append(field_error("items", "list the items received (e.g. 氏名, 電話番号)"))
    elif not all(items):
        errors.append(field_error("items", "item names cannot be blank"))
    if data.retain_until is not None and data.retain_until < data.received_on:
        errors.append(field_error("retain_until", "cannot be before the date received"))
    if errors:
        raise ValidationFailed(f"{len(errors)} field(s) are invalid", errors=errors)
    # The legal period runs from when the record is made; a late entry (received long ago) keeps it the
    # full 3 years from today rather than expiring early.
    retain_until = data.retain_until or add_years(max(data.received_on, today), RETENTION_YEARS)
    source = DataSource(
        provider_name=provider,
        provider_address=clean(data.provider_address),
        provider_representative=clean(data.provider_representative),
        acquisition_method=method,
        received_on=data.received_on,
        items=list(dict.fromkeys(i for i in items if i)),
        purpose=(data.purpose or "").strip() or None,
        retain_until=retain_until,
        recorded_by=actor.username[:60],
    )
    SourceRepository(session, actor.tenant_id).add(source)
    audit.record(session, actor, "create", resource="data_source", resource_id=source.id)
    return source


def list_sources(session: Session, actor: Actor, *, limit: int = 50, offset: int = 0) -> tuple[list[DataSource], int]:
    """The tenant's list sources, newest first."""
    return SourceRepository(session, actor.tenant_id).page(limit, offset)


def get_source(session: Session, actor: Actor, source_id: int) -> tuple[DataSource, int]:
    """A list source and how many customers it is linked to, or :class:`NotFound` (also another tenant's)."""
    repo = SourceRepository(session, actor.tenant_id)
    source = repo.get(source_id)
    if source is None:
        raise NotFound(f"list source {source_id} not found")
    return source, repo.customer_count(source_id)


def link_customers(
    session: Session, actor: Actor, source_id: int, customer_ids: Iterable[int], *, created: Iterable[int] = ()
) -> int:
    """Record that these customers came from (or were updated by) the list; returns how many links are new.

    Pairs already linked are skipped. The source and every customer must be in the actor's tenant
    (:class:`NotFound` otherwise, and nothing is linked). ``created``: customers the caller inserted in this
    very transaction for the actor's tenant (an import's new customers) — they cannot be another tenant's nor
    linked yet, so they are written without those checks (one ``COPY`` on PostgreSQL).
    """
    repo = SourceRepository(session, actor.tenant_id)
    if repo.get(source_id) is None:
        raise NotFound(f"list source {source_id} not found")
    fresh = list(dict.fromkeys(created))
    is_fresh = set(fresh)
    wanted = list(dict.fromkeys(cid for cid in customer_ids if cid not in is_fresh))
    # A link to another tenant's customer would leak it into this tenant's records: all must be ours.
    missing = set(wanted) - customers.existing_ids(session, actor, wanted) if wanted else set()
    if missing:
        raise NotFound(f"customer {min(missing)} not found")
    now = utcnow()
    new = repo.link(source_id, wanted, now) + repo.link_created(source_id, fresh, now)
    if new:
        audit.record(
            session,
            actor,
            "update",
            resource="data_source",
            resource_id=source_id,
            detail={"linked_customers": new},
        )
    return new


# --- requests of data subjects ------------------------------------------------------------------


def _received(day: date | None, today: date) -> date:
    day = day or today
    if day > today:
        raise ValidationFailed(
            "received_on is in the future", errors=[field_error("received_on", "cannot be in the future")]
        )
    return day


def request_suspension(session: Session, actor: Actor, customer_id: int, data: SuspensionCreate) -> PrivacyRequest:
    """A suspension-of-use request (利用停止請求): record it and stop all contact with the customer.

    A repeated request is recorded again and changes nothing else (the customer stays do-not-contact).
    """
    received_on = _received(data.received_on, business_today())
    customers.mark_do_not_contact(session, actor, customer_id, SUSPENSION_REASON)
    request = PrivacyRequest(
        customer_id=customer_id,
        kind=RequestKind.suspension.value,
        received_on=received_on,
        channel=data.channel.value,
        note=(data.note or "").strip() or None,
        handled_by=actor.username[:60],
        detail={"do_not_contact": True, "outbound_excluded": True},
    )
    PrivacyRequestRepository(session, actor.tenant_id).add(request)
    audit.record(
        session,
        actor,
        "create",
        resource="privacy_request",
        resource_id=request.id,
        customer_id=customer_id,
        detail={"kind": request.kind},
    )
    return request


def requests_for_customer(session: Session, actor: Actor, customer_id: int) -> list[PrivacyRequest]:
    """The customer's requests, oldest first (an audited read: notes may hold personal data)."""
    customers.require_customer(session, actor, customer_id)
    audit.record_customer_reads(session, actor, [customer_id], resource="privacy_requests")
    return PrivacyRequestRepository(session, actor.tenant_id).for_customer(customer_id)


def disclose(
    session: Session,
    actor: Actor,
    customer_id: int,
    *,
    channel: Channel | None = None,
    received_on: date | None = None,
    note: str | None = None,
) -> Disclosure:
    """Everything held about one customer (開示請求). Records the request and one ``export`` audit row.

    Both are written before the data is gathered, so the answer lists this disclosure too.
    """
    customer = customers.get_customer(session, actor, customer_id)
    request = PrivacyRequest(
        customer_id=customer_id,
        kind=RequestKind.disclosure.value,
        received_on=_received(received_on, business_today()),
        # The API's GET carries no body: an unknown channel is stored as such rather than guessed.
        channel=channel.value if channel else "unspecified",
        note=(note or "").strip() or None,
        handled_by=actor.username[:60],
    )
    PrivacyRequestRepository(session, actor.tenant_id).add(request)
    audit.record(
        session,
        actor,
        "export",
        resource="disclosure",
        resource_id=request.id,
        customer_id=customer_id,
        detail={"privacy_request_id": request.id},
    )
    labels = {d.key: d.label for d in customers.list_custom_fields(session, actor)}
    return Disclosure(
        generated_at=utcnow(),
        request_id=request.id,
        customer=CustomerOut.model_validate(customer),
        custom_fields=[
            DisclosedField(key=key, label=labels.get(key, key), value=value) for key, value in customer.custom.items()
        ],
        orders=[OrderOut.model_validate(o) for o in orders.all_for_customer(session, actor, customer_id)],
        complaints=[ComplaintOut.model_validate(c) for c in complaints.all_for_customer(session, actor, customer_id)],
        contacts=[ContactOut.model_validate(c) for c in contacts.all_for_customer(session, actor, customer_id)],
        sources=[
            DisclosedSource.model_validate({**_columns(source), "linked_at": linked_at})
            for source, linked_at in SourceRepository(session, actor.tenant_id).sources_of_customer(customer_id)
        ],
        privacy_requests=[
            PrivacyRequestOut.model_validate(r)
            for r in PrivacyRequestRepository(session, actor.tenant_id).for_customer(customer_id)
        ],
        access_log=[AccessEntry.model_validate(e) for e in audit.customer_trail(session, actor, customer_id)],
    )


def _columns(source: DataSource) -> dict[str, Any]:
    return {c.key: getattr(source, c.key) for c in DataSource.__table__.columns}
