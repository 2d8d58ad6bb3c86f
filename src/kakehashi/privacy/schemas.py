"""API shapes of the APPI records: list sources, data subjects' requests, the disclosure export."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from kakehashi.complaints.schemas import ComplaintOut
from kakehashi.contacts.schemas import ContactOut
from kakehashi.customers.schemas import CustomerOut
from kakehashi.kit.masking import CustomValue, HiddenText
from kakehashi.orders.schemas import OrderOut


def _no_nul(text: str) -> str:
    # PostgreSQL text cannot hold NUL: refuse it as input (422) instead of failing at insert (500).
    if "\x00" in text:
        raise ValueError("NUL characters are not allowed")
    return text


NoNulStr = Annotated[str, AfterValidator(_no_nul)]


class Channel(StrEnum):
    """How a data subject's request reached the center."""

    phone = "phone"
    mail = "mail"
    web = "web"
    letter = "letter"
    in_person = "in_person"


class RequestKind(StrEnum):
    disclosure = "disclosure"  # 開示請求
    suspension = "suspension"  # 利用停止請求
    correction = "correction"  # 訂正請求


class SourceCreate(BaseModel):
    """A third-party provision record (第三者提供に係る記録). Blank text and dates are checked by the service,
    so the API and the CLI report the same per-field errors."""

    provider_name: NoNulStr = Field(max_length=200, examples=["株式会社リストワークス"])
    provider_address: NoNulStr | None = Field(default=None, max_length=300, examples=["東京都千代田区丸の内1-1-1"])
    provider_representative: NoNulStr | None = Field(default=None, max_length=100, examples=["代表取締役 佐藤 一郎"])
    acquisition_method: NoNulStr = Field(max_length=2000, examples=["懸賞応募者から第三者提供の同意を得て取得"])
    received_on: date
    items: list[NoNulStr] = Field(max_length=100, examples=[["氏名", "電話番号", "住所"]])
    purpose: NoNulStr | None = Field(default=None, max_length=2000)
    retain_until: date | None = Field(default=None, description="default: 3 years after the record is made")


class SourceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    provider_name: str
    provider_address: str | None
    provider_representative: str | None
    acquisition_method: str
    received_on: date
    items: list[str]
    purpose: str | None
    retain_until: date
    recorded_by: str
    created_at: datetime


class SourceDetail(SourceOut):
    customer_count: int


class SourcePage(BaseModel):
    items: list[SourceOut]
    total: int
    limit: int
    offset: int


class SuspensionCreate(BaseModel):
    received_on: date | None = Field(default=None, description="default: today (Japan time)")
    channel: Channel
    note: NoNulStr | None = Field(default=None, max_length=2000)


class PrivacyRequestOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    kind: str
    received_on: date
    channel: str
    note: HiddenText | None
    handled_by: str
    created_at: datetime
    detail: dict[str, Any] | None


class DisclosedField(BaseModel):
    """A custom field value with its label, so the person can read what each value means."""

    key: str
    label: str
    value: CustomValue


class DisclosedSource(SourceOut):
    linked_at: datetime


class AccessEntry(BaseModel):
    """One line of the access trail: who touched the record, when, how."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    username: str
    role: str | None
    action: str
    resource: str | None
    outcome: str
    route: str | None


class Disclosure(BaseModel):
    """Everything held about one customer (開示請求への回答)."""

    generated_at: datetime
    request_id: int
    customer: CustomerOut
    custom_fields: list[DisclosedField]
    orders: list[OrderOut]
    complaints: list[ComplaintOut]
    contacts: list[ContactOut]
    sources: list[DisclosedSource]
    privacy_requests: list[PrivacyRequestOut]
    access_log: list[AccessEntry]
