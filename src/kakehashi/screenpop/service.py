"""Compose the screen pop from the domains' services: one indexed lookup plus bounded reads."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from kakehashi.audit import service as audit
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


def screen_pop(session: Session, actor: Actor, raw_phone: str, *, region: str = "JP") -> ScreenPop:
    """The card for a caller: the customer with orders, open complaints, flags, contacts, custom fields.

    Five statements whatever the history size: customer+numbers, orders+lines, open cases, contacts,
    field definitions. Each domain returns plain rows for this path (ADR 0007).
    """
    number = read_number(raw_phone, region)
    card = customers.card_by_phone(session, actor, number.e164) if number.e164 else None
    if card is None:
        # Looking up a number is itself audited: probing for who is a customer leaves a trace.
        audit.record(session, actor, "read", resource="screenpop", detail={"e164": number.e164, "known": False})
        return ScreenPop(known=False, phone=number)
    audit.record_customer_reads(session, actor, [card["id"]], resource="screenpop")
    return _compose(session, actor, card, number)


def screen_pop_for_customer(session: Session, actor: Actor, customer_id: int) -> ScreenPop:
    """The same card for a customer picked from a list (one without a number included)."""
    card = customers.card_by_id(session, actor, customer_id)
    if card is None:
        raise NotFound(f"customer {customer_id} not found")
    audit.record_customer_reads(session, actor, [customer_id], resource="screenpop")
    primary = next((p for p in card["phones"] if p["is_primary"]), None)
    number = (
        CallerNumber(
            input=primary["national"],
            valid=True,
            e164=primary["e164"],
            national=primary["national"],
            kind=primary["kind"],
        )
        if primary
        else CallerNumber(input="", valid=False, problem="no phone number on file")
    )
    return _compose(session, actor, card, number)


def _compose(session: Session, actor: Actor, card: dict[str, Any], number: CallerNumber) -> ScreenPop:
    customer = CustomerOut.model_validate(card)
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
