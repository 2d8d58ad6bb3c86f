"""API shapes of the customer master."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from kakehashi.kit.clock import business_today
from kakehashi.kit.masking import CustomValues, EmailText, HiddenDate, HiddenText, NameText, PhoneText


class Gender(StrEnum):
    male = "male"
    female = "female"
    other = "other"
    unknown = "unknown"


class FieldType(StrEnum):
    text = "text"
    number = "number"
    date = "date"
    boolean = "boolean"
    choice = "choice"


class PhoneIn(BaseModel):
    number: str = Field(min_length=1, max_length=40, examples=["03-1234-5678"])
    label: str | None = Field(default=None, max_length=20, examples=["自宅"])
    is_primary: bool = False


class PhoneOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    e164: PhoneText
    national: PhoneText
    kind: str
    label: str | None
    is_primary: bool


class _CustomerFields(BaseModel):
    name_kana: str | None = Field(default=None, max_length=200, examples=["ヤマダ ハナコ"])
    gender: Gender | None = None
    birthday: date | None = None
    postal_code: str | None = Field(default=None, max_length=10, examples=["100-0001"])
    prefecture: str | None = Field(default=None, max_length=10)
    city: str | None = Field(default=None, max_length=100)
    town: str | None = Field(default=None, max_length=200)
    street: str | None = Field(default=None, max_length=200)
    building: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    notes: str | None = Field(default=None, max_length=10000)
    rank: str | None = Field(default=None, max_length=20, examples=["VIP"])


class CustomerCreate(_CustomerFields):
    name: str = Field(min_length=1, max_length=200, examples=["山田 花子"])
    phones: list[PhoneIn] = Field(default_factory=list, max_length=10)
    custom: dict[str, Any] = Field(default_factory=dict)


class CustomerUpdate(_CustomerFields):
    """Partial update: fields left out stay as they are; ``phones`` given replaces the set."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    phones: list[PhoneIn] | None = Field(default=None, max_length=10)
    custom: dict[str, Any] | None = None


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: NameText
    name_kana: NameText | None
    gender: str | None
    birthday: HiddenDate | None
    postal_code: str | None
    prefecture: str | None
    city: str | None
    town: str | None
    street: HiddenText | None
    building: HiddenText | None
    email: EmailText | None
    notes: HiddenText | None
    rank: str
    caution: bool
    caution_reason: str | None
    outbound_excluded: bool
    excluded_reason: str | None
    do_not_contact: bool
    custom: CustomValues
    phones: list[PhoneOut]
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def age(self) -> int | None:
        return age_on(self.birthday, business_today()) if self.birthday else None


class CustomerBrief(BaseModel):
    """A suggestion row: enough to tell two 山田 apart."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: NameText
    name_kana: NameText | None
    prefecture: str | None
    city: str | None
    rank: str
    caution: bool
    phone: PhoneText | None = None


class CustomerPage(BaseModel):
    items: list[CustomerOut]
    total: int
    limit: int
    offset: int


class CustomFieldCreate(BaseModel):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$", examples=["children"])
    label: str = Field(min_length=1, max_length=100, examples=["子供の人数"])
    type: FieldType
    choices: list[str] | None = Field(default=None, max_length=200)
    required: bool = False
    position: int = Field(default=0, ge=0, le=10_000)


class CustomFieldUpdate(BaseModel):
    label: str | None = Field(default=None, min_length=1, max_length=100)
    choices: list[str] | None = Field(default=None, max_length=200)
    required: bool | None = None
    active: bool | None = None
    position: int | None = Field(default=None, ge=0, le=10_000)


class CustomFieldOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    key: str
    label: str
    type: FieldType
    choices: list[str] | None
    required: bool
    active: bool
    position: int


def age_on(birthday: date, today: date) -> int:
    """Age in whole years on ``today`` (a 29 February birthday counts on 1 March in common years)."""
    had_birthday = (today.month, today.day) >= (birthday.month, birthday.day)
    return today.year - birthday.year - (0 if had_birthday else 1)
