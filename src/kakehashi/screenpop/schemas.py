from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from kakehashi.complaints.schemas import ComplaintOut
from kakehashi.contacts.schemas import ContactOut
from kakehashi.customers.schemas import CustomerOut
from kakehashi.orders.schemas import OrderOut


class CallerNumber(BaseModel):
    input: str
    valid: bool
    e164: str | None = None
    national: str | None = None
    kind: str | None = None
    withheld: bool = False
    problem: str | None = None


class CautionFlag(BaseModel):
    code: str
    label: str
    detail: str | None = None


class CustomFieldValue(BaseModel):
    key: str
    label: str
    type: str
    value: Any


class ScreenPop(BaseModel):
    """One response with all the operator needs before saying a word."""

    known: bool
    phone: CallerNumber
    customer: CustomerOut | None = None
    orders: list[OrderOut] = []
    open_complaints: list[ComplaintOut] = []
    caution_flags: list[CautionFlag] = []
    contacts: list[ContactOut] = []
    custom_fields: list[CustomFieldValue] = []
