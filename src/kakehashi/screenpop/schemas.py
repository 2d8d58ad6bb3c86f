from __future__ import annotations

from pydantic import BaseModel

from kakehashi.campaigns.compliance import LeadHistory
from kakehashi.complaints.schemas import ComplaintOut
from kakehashi.contacts.schemas import ContactOut
from kakehashi.customers.schemas import CustomerOut
from kakehashi.kit.masking import CustomValue, PhoneText
from kakehashi.orders.schemas import OrderOut


class CallerNumber(BaseModel):
    input: PhoneText
    valid: bool
    e164: PhoneText | None = None
    national: PhoneText | None = None
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
    value: CustomValue


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
    #: The number's leads in outbound campaigns (a lead calling back: キャンペーン履歴), newest first.
    campaign_history: list[LeadHistory] = []
