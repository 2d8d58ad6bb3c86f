from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from kakehashi.kit.masking import HiddenText


class Kind(StrEnum):
    complaint = "complaint"
    ret = "return"


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class ComplaintCreate(BaseModel):
    kind: Kind = Kind.complaint
    occurred_on: date | None = None
    category: str = Field(min_length=1, max_length=40, examples=["配送遅延"])
    text: str = Field(min_length=1, max_length=10000)
    severity: Severity = Severity.medium
    order_id: int | None = Field(default=None, ge=1, le=2**63 - 1)


class ComplaintOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    order_id: int | None
    kind: str
    occurred_on: date
    category: str
    text: HiddenText
    severity: str
    status: str
    created_at: datetime
    resolved_at: datetime | None
