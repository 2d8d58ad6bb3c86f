"""The screen pop: on PostgreSQL one statement (``screenpop.repository``, ADR 0014); elsewhere composed
from the domains' services, one indexed lookup plus bounded reads (ADR 0007). Both give the same card."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy.orm import Session

from kakehashi.audit import service as audit
from kakehashi.campaigns import service as campaigns
from kakehashi.complaints import service as complaints
from kakehashi.complaints.schemas import ComplaintOut
from kakehashi.contacts import service as contacts
from kakehashi.contacts.schemas import ContactOut
from kakehashi.customers import service as customers
from kakehashi.customers.schemas import CustomerOut
from kakehashi.kit.context import Actor
from kakehashi.kit.errors import NotFound
from kakehashi.kit.phone import InvalidPhone, parse_phone
from kakehashi.orders import service as orders
from kakehashi.orders.schemas import OrderOut
from kakehashi.screenpop.repository import ScreenPopRepository
from kakehashi.screenpop.schemas import CallerNumber, CautionFlag, CustomFieldValue, ScreenPop

_WITHHELD = {"", "anonymous", "unknown", "unavailable", "private", "restricted", "非通知", "通知不可能", "公衆電話"}


def read_number(raw: str, region: str = "JP") -> CallerNumber:
    """What the caller ID says, never an error: a withheld or garbled number is a blank card."""
    text = (raw or "").strip()
    if text.lower() in _WITHHELD:
        return CallerNumber(input=raw, valid=False, withheld=True, problem="caller ID withheld")
    try:
        parsed = parse_phone(text, region)
    except InvalidPhone as exc:
        return CallerNumber(input=raw, valid=False, problem=str(exc))
    return CallerNumber(input=raw, valid=True, e164=parsed.e164, national=parsed.national, kind=parsed.kind)


def screen_pop(
    session: Session, actor: Actor, raw_phone: str, *, region: str = "JP", one_statement: bool | None = None
) -> ScreenPop:
    """The card for a caller: the customer with orders, open complaints, flags, contacts, custom fields.

    On PostgreSQL one statement, audit row included (``one_statement=False`` forces the generic path:
    tests and the benchmark compare the two). Elsewhere five statements plus the audit row whatever the
    history size: customer+numbers, orders+lines, open cases, contacts, field definitions (ADR 0007).
    """
    number = read_number(raw_phone, region)
    if number.e164 and _in_one_statement(session, one_statement):
        found = ScreenPopRepository(session, actor.tenant_id).card_by_phone(actor, number.e164)
        if found is None:
            return ScreenPop(known=False, phone=number)
        return _assemble(_CardParts.model_validate_json(found), number)
    card = customers.card_by_phone(session, actor, number.e164) if number.e164 else None
    if card is None:
        # Looking up a number is itself audited: probing for who is a customer leaves a trace.
        audit.record(session, actor, "read", resource="screenpop", detail={"e164": number.e164, "known": False})
        return ScreenPop(known=False, phone=number)
    audit.record_customer_reads(session, actor, [card["id"]], resource="screenpop")
    return _compose(session, actor, CustomerOut.model_validate(card), number)


def screen_pop_for_customer(
    session: Session, actor: Actor, customer_id: int, *, one_statement: bool | None = None
) -> ScreenPop:
    """The same card for a customer picked from a list (one without a number included)."""
    if _in_one_statement(session, one_statement):
        found = ScreenPopRepository(session, actor.tenant_id).card_by_id(actor, customer_id)
        if found is None:
            raise NotFound(f"customer {customer_id} not found")
        parts = _CardParts.model_validate_json(found)
        return _assemble(parts, _number_on_file(parts.customer))
    card = customers.card_by_id(session, actor, customer_id)
    if card is None:
        raise NotFound(f"customer {customer_id} not found")
    audit.record_customer_reads(session, actor, [customer_id], resource="screenpop")
    customer = CustomerOut.model_validate(card)
    return _compose(session, actor, customer, _number_on_file(customer))


def with_campaign_history(
    session: Session, actor: Actor, pop: ScreenPop, caller: str | None = None, *, region: str = "JP"
) -> ScreenPop:
    """The pop with the calling number's outbound campaigns (a lead calling back, issue 17), known customer or
    not: ``caller`` is the number that rang (default: the pop's own). A second small statement, added by the
    desk's two doors (the ringing event, ``GET /screenpop``); the card itself stays one statement (ADR 0014)."""
    e164 = read_number(caller, region).e164 if caller is not None else pop.phone.e164
    if e164:
        pop.campaign_history = campaigns.lead_history(session, actor, e164)
    return pop


def _number_on_file(customer: CustomerOut) -> CallerNumber:
    primary = next((p for p in customer.phones if p.is_primary), None)
    if primary is None:
        return CallerNumber(input="", valid=False, problem="no phone number on file")
    return CallerNumber(
        input=primary.national, valid=True, e164=primary.e164, national=primary.national, kind=primary.kind
    )


def _in_one_statement(session: Session, one_statement: bool | None) -> bool:
    if one_statement is None:
        return session.get_bind().dialect.name == "postgresql"
    return one_statement


class _CardParts(BaseModel):
    """The JSON the one-statement path gets from PostgreSQL, parsed into the response's own models."""

    customer: CustomerOut
    orders: list[OrderOut]
    open_complaints: list[ComplaintOut]
    contacts: list[ContactOut]
    custom_fields: list[CustomFieldValue]


def _assemble(parts: _CardParts, number: CallerNumber) -> ScreenPop:
    return ScreenPop(
        known=True,
        phone=number,
        customer=parts.customer,
        orders=parts.orders,
        open_complaints=parts.open_complaints,
        caution_flags=_flags(parts.customer, len(parts.open_complaints)),
        contacts=parts.contacts,
        custom_fields=parts.custom_fields,
    )


def _compose(session: Session, actor: Actor, customer: CustomerOut, number: CallerNumber) -> ScreenPop:
    open_cases = [ComplaintOut.model_validate(c) for c in complaints.open_rows(session, actor, customer.id)]
    return ScreenPop(
        known=True,
        phone=number,
        customer=customer,
        orders=[OrderOut.model_validate(o) for o in orders.recent_order_rows(session, actor, customer.id)],
        open_complaints=open_cases,
        caution_flags=_flags(customer, len(open_cases)),
        contacts=[ContactOut.model_validate(c) for c in contacts.recent_rows(session, actor, customer.id)],
        custom_fields=[
            CustomFieldValue(key=key, label=label, type=kind, value=customer.custom.get(key))
            for key, label, kind in customers.active_field_labels(session, actor)
        ],
    )


def _flags(customer: CustomerOut, open_complaints: int) -> list[CautionFlag]:
    flags = []
    if open_complaints:
        flags.append(CautionFlag(code="open_complaint", label="未解決クレームあり", detail=f"{open_complaints}件"))
    if customer.caution:
        flags.append(CautionFlag(code="caution", label="要注意", detail=customer.caution_reason))
    if customer.do_not_contact:
        flags.append(CautionFlag(code="do_not_contact", label="連絡停止 (利用停止請求)"))
    if customer.outbound_excluded:
        flags.append(CautionFlag(code="outbound_excluded", label="発信禁止", detail=customer.excluded_reason))
    if customer.rank == "vip":
        flags.append(CautionFlag(code="vip", label="VIP"))
    return flags
